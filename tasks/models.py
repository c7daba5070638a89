"""Loading a trained G: from an exported file (weights only) or from an MLflow model URI."""

from __future__ import annotations

from pathlib import Path

from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage.checkpoints import load_checkpoint
from tasks.tracking import default_tracking_uri

DEFAULT_MODEL_URI = "models:/im2flow-generator@champion"


def load_generator_export(path: str) -> UNetGenerator:
    """G from an exported `generator_final.pt` (tensors and plain data only: weights_only)."""
    blob = load_checkpoint(path)
    if blob is None or blob.get("kind") != "im2flow-generator":
        raise ValueError(f"{path} is not an exported im2flow generator")
    model = UNetGenerator(GeneratorConfig(**blob["generator_config"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval()


def load_generator(model: str | None, work_dir: str | None) -> UNetGenerator:
    """G from a local exported `.pt` file, or from an MLflow model URI (default: the registry alias).

    MLflow URIs resolve against `work_dir`'s tracking store (or $MLFLOW_TRACKING_URI).
    """
    if model and (Path(model).is_file() or ("://" in model and not model.startswith(("models:/", "runs:/")))):
        return load_generator_export(model)  # a local file or a URL of one (s3://…/generator_final.pt)
    if model is None and work_dir is None:
        raise ValueError("give a model (a .pt export or an MLflow model URI) or the work dir of a trained run")
    import mlflow

    mlflow.set_tracking_uri(default_tracking_uri(work_dir or ".", None))
    uri = model or DEFAULT_MODEL_URI
    try:
        loaded = mlflow.pytorch.load_model(uri, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; the user needs the URI and why
        raise ValueError(f"cannot load model {uri} from {mlflow.get_tracking_uri()}: {exc}") from exc
    if not isinstance(loaded, UNetGenerator):
        raise ValueError(f"{uri} is a {type(loaded).__name__}, not an im2flow generator")
    return loaded.eval()
