"""G in MLflow's model registry as weights and plain data only: nothing that runs code when loaded.

A registered im2flow generator is an MLflow LoggedModel whose artifacts are
- `generator.pt`: the exported checkpoint (tensors + the generator config as plain data), read
  back with `torch.load(..., weights_only=True)`;
- `im2flow_model.json`: kind, format, the weights file's SHA-256 and size, the generator config;
- `MLmodel`: the same facts as an `im2flow_generator` flavour, so MLflow's UI shows what it is.
It is registered under a name and given an alias, so the registry versions it as usual. Loading
reads only the JSON descriptor and the weights (checksum checked first); a model without the
descriptor (e.g. one logged with `mlflow.pytorch`, whose pickle runs code on load) is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from im2flow_storage.checkpoints import load_checkpoint
from im2flow_storage.paths import local_copy

DESCRIPTOR = "im2flow_model.json"
WEIGHTS = "generator.pt"
KIND = "im2flow-generator"
FORMAT = "torch-weights-only/1"


class UnsafeModel(ValueError):
    """A model URI points at something that is not a weights-only im2flow generator; it was not loaded."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def register_generator(export_url: str, tracking_uri: str, run_id: str, registered_model: str,
                       alias: str) -> str:
    """Log the exported G at `export_url` as a weights-only model of run `run_id`, register it, set `alias`.

    Returns the new registry version (a string, e.g. "3").
    """
    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="im2flow-model-") as tmp, local_copy(export_url) as export:
        blob = load_checkpoint(export)
        if blob is None or blob.get("kind") != KIND:
            raise ValueError(f"{export_url} is not an exported im2flow generator")
        folder = Path(tmp)
        shutil.copyfile(export, folder / WEIGHTS)
        descriptor = {"kind": KIND, "format": FORMAT, "weights": WEIGHTS, "sha256": _sha256(folder / WEIGHTS),
                      "size_bytes": (folder / WEIGHTS).stat().st_size, "generator_config": blob["generator_config"],
                      "labels": list(blob.get("labels", []))}
        (folder / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2))
        flavour = {k: descriptor[k] for k in ("format", "weights", "sha256", "generator_config")}
        (folder / "MLmodel").write_text(yaml.safe_dump({"artifact_path": "generator", "run_id": run_id,
                                                        "flavors": {"im2flow_generator": flavour}}))
        experiment_id = client.get_run(run_id).info.experiment_id
        model = client.create_logged_model(experiment_id, name="generator", source_run_id=run_id,
                                           model_type=KIND, params={"sha256": descriptor["sha256"]})
        client.log_model_artifacts(model.model_id, str(folder))
        client.finalize_logged_model(model.model_id, "READY")
    try:
        client.get_registered_model(registered_model)
    except MlflowException:
        client.create_registered_model(registered_model, description="Im2Flow generator G (weights only)")
    # MLflow's SQL registry resolves a models:/<id> source through the global tracking URI.
    mlflow.set_tracking_uri(tracking_uri)
    version = client.create_model_version(registered_model, f"models:/{model.model_id}", run_id=run_id,
                                          model_id=model.model_id, tags={"format": FORMAT})
    client.set_registered_model_alias(registered_model, alias, version.version)
    return str(version.version)


def _download(root: str, name: str, tracking_uri: str, folder: str) -> Path | None:
    """Artifact `name` under the artifact URI `root` into `folder`, or None if there is no such artifact."""
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{root.rstrip('/')}/{name}", dst_path=folder,
                                                        tracking_uri=tracking_uri))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "no such artifact" in exc.message.lower():
            return None
        raise
    except OSError:  # a plain file:// artifact store raises this for a missing file
        return None


def model_artifact_root(uri: str, tracking_uri: str) -> str:
    """Where the artifacts of model `uri` live (a file:// or object-store URI), resolved in `tracking_uri`.

    `models:/NAME@ALIAS`, `models:/NAME/VERSION` and `models:/<model id>` are looked up with a client
    of `tracking_uri` (its registry too), never through MLflow's process-wide registry URI, which falls
    back to `./mlflow.db` of whatever the current folder is. `runs:/…` and artifact URIs pass through.
    Raises ValueError "… not found in <tracking_uri>" for a name, alias, version or id it does not know.
    """
    if not uri.startswith("models:/"):
        return uri
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    ref = uri.removeprefix("models:/").strip("/").split("/")
    try:
        if ref[0].startswith("m-"):
            return client.get_logged_model(ref[0]).artifact_location
        if "@" in ref[0]:
            name, alias = ref[0].split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        elif len(ref) > 1:
            version = client.get_model_version(ref[0], ref[1])
        else:
            raise ValueError(f"model {uri}: give a version or an alias (models:/NAME@ALIAS or models:/NAME/VERSION)")
        if getattr(version, "model_id", None):
            return client.get_logged_model(version.model_id).artifact_location
        return client.get_model_version_download_uri(version.name, version.version)
    except MlflowException as exc:
        raise ValueError(f"model {uri} not found in {tracking_uri}: {exc.message}") from exc


def load_registered_generator_blob(uri: str, tracking_uri: str) -> dict[str, Any]:
    """The exported checkpoint of the registered G at `uri` (e.g. models:/im2flow-generator@champion).

    Downloads only the descriptor and the weights; checks kind, format, size and SHA-256, then reads
    the weights with `weights_only=True`. Raises UnsafeModel for anything else, without loading it.
    Works from any current folder: the model is resolved in `tracking_uri` alone (`model_artifact_root`).
    """
    root = model_artifact_root(uri, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="im2flow-model-") as tmp:
        descriptor_path = _download(root, DESCRIPTOR, tracking_uri, tmp)
        if descriptor_path is None:
            raise UnsafeModel(f"{uri} is not a weights-only im2flow generator (it has no {DESCRIPTOR}); it was not "
                              "loaded, since other model formats (e.g. mlflow.pytorch's pickle) run code on load. "
                              "Register G with `im2flow train`, or pass an exported generator_final.pt")
        descriptor = json.loads(descriptor_path.read_text())
        if descriptor.get("kind") != KIND or descriptor.get("format") != FORMAT or descriptor.get("weights") != WEIGHTS:
            raise UnsafeModel(f"{uri}: unknown model descriptor {descriptor.get('kind')!r} / "
                              f"{descriptor.get('format')!r}; expected {KIND} / {FORMAT}")
        weights = _download(root, WEIGHTS, tracking_uri, str(Path(tmp) / "w"))
        if weights is None:
            raise UnsafeModel(f"{uri}: the weights file {WEIGHTS} is missing")
        if weights.stat().st_size != descriptor.get("size_bytes") or _sha256(weights) != descriptor.get("sha256"):
            raise UnsafeModel(f"{uri}: {WEIGHTS} does not match the SHA-256 recorded in {DESCRIPTOR} "
                              "(corrupted or replaced); it was not loaded")
        try:
            blob = load_checkpoint(str(weights))
        except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ... on foreign content
            raise UnsafeModel(f"{uri}: {WEIGHTS} is not a plain tensor checkpoint and was refused "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(blob, dict) or blob.get("kind") != KIND:
        raise UnsafeModel(f"{uri}: {WEIGHTS} is not an exported im2flow generator")
    return blob
