"""Loading a trained G: from an exported file or from an MLflow model URI, weights only either way."""

from __future__ import annotations

from pathlib import Path

import torch

from im2flow_core.devices import resolve_device
from im2flow_core.potential_head import PotentialHead
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage.checkpoints import load_checkpoint
from im2flow_tasks.model_registry import load_registered_generator_blob
from im2flow_tasks.tracking import existing_tracking_uri

DEFAULT_MODEL_URI = "models:/im2flow-generator@champion"


def load_generator_export(path: str) -> UNetGenerator:
    """G from an exported `generator_final.pt` (tensors and plain data only: weights_only)."""
    blob = load_checkpoint(path)
    if blob is None or blob.get("kind") != "im2flow-generator":
        raise ValueError(f"{path} is not an exported im2flow generator")
    return _generator(blob)


def _generator(blob: dict) -> UNetGenerator:
    """G from an export blob; its motion-potential head, when the export has one, as `model.potential_head`."""
    model = UNetGenerator(GeneratorConfig(**blob["generator_config"]))
    model.load_state_dict(blob["state_dict"])
    head = blob.get("potential_head")
    model.potential_head = PotentialHead.from_state(head) if head is not None else None
    return model.eval()


def is_model_file(model: str) -> bool:
    """Whether `model` names an exported weights file (a local path or a URL such as s3://…/generator_final.pt)."""
    return Path(model).is_file() or ("://" in model and not model.startswith(("models:/", "runs:/")))


def load_generator(model: str | None, work_dir: str | None, tracking_uri: str | None = None) -> UNetGenerator:
    """G from a local exported `.pt` file, or from an MLflow model URI (default: the registry alias).

    MLflow URIs resolve against `tracking_uri`, else $MLFLOW_TRACKING_URI, else `work_dir`'s SQLite
    store. Registered models load as weights only (`im2flow_tasks.model_registry`); any other model format
    is refused, never unpickled.
    """
    if model and is_model_file(model):
        return load_generator_export(model)
    if model and "://" not in model and ":/" not in model:
        raise ValueError(f"model {model}: no such file (give an exported .pt file or an MLflow model URI)")
    uri = model or DEFAULT_MODEL_URI
    # Reading only: a mistyped --work-dir names the missing mlflow.db instead of creating an empty one.
    tracking_uri = existing_tracking_uri(work_dir, tracking_uri)
    return _generator(load_registered_generator_blob(uri, tracking_uri))


def load_generator_on(model: str | None, work_dir: str | None, tracking_uri: str | None,
                      device: str) -> tuple[UNetGenerator, torch.device]:
    """`load_generator`, in eval mode on `device` ("auto", "cpu", "cuda", …), and the torch device it chose."""
    torch_device = resolve_device(device)
    return load_generator(model, work_dir, tracking_uri).to(torch_device).eval(), torch_device
