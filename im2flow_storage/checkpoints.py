"""Training checkpoints: torch files written atomically, read back with weights_only=True.

A checkpoint is a dict of tensors and plain data (state dicts, the fit state, the config, the
MLflow run id), so loading it never unpickles code. Written to a temporary name, then renamed:
an interrupted save never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import torch

from im2flow_storage.paths import exists, filesystem


def _write_atomically(url: str, data: bytes) -> None:
    fs, path = filesystem(url)
    fs.makedirs(fs._parent(path), exist_ok=True)  # the folder of the file ("g.pt" alone: the current one)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with fs.open(tmp, "wb") as handle:
        handle.write(data)
    fs.mv(tmp, path)


def _read(url: str) -> bytes | None:
    if not exists(url):
        return None
    fs, path = filesystem(url)
    with fs.open(path, "rb") as handle:
        return handle.read()


def save_checkpoint(url: str, payload: dict[str, Any]) -> None:
    """Write `payload` to `url` (local path or fsspec URL) atomically."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    _write_atomically(url, buffer.getvalue())


class CheckpointError(ValueError):
    """A file is not a checkpoint of tensors and plain data (not a torch file, or one that would need unpickling)."""


def load_checkpoint(url: str) -> dict[str, Any] | None:
    """The checkpoint at `url`, or None if there is none; CheckpointError for a file that is not one."""
    data = _read(url)
    if data is None:
        return None
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds (pickle, zip, key errors) for foreign files
        kind = "it holds objects that would need unpickling" if "weights_only" in str(exc) else \
            f"not a torch checkpoint ({type(exc).__name__})"
        raise CheckpointError(f"{url}: {kind}") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{url}: not an im2flow checkpoint (holds a {type(blob).__name__}, not a dict)")
    return blob


def save_json(url: str, data: dict[str, Any]) -> None:
    """Write a small JSON record (e.g. a training run's ids) atomically."""
    _write_atomically(url, json.dumps(data, indent=2).encode())


def load_json(url: str) -> dict[str, Any] | None:
    """The JSON record at `url`, or None if there is none."""
    data = _read(url)
    return None if data is None else json.loads(data)
