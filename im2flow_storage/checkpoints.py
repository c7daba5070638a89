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

from im2flow_storage.paths import ensure_dir, exists, filesystem


def _write_atomically(url: str, data: bytes) -> None:
    fs, path = filesystem(url)
    ensure_dir(url.rsplit("/", 1)[0])
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


def load_checkpoint(url: str) -> dict[str, Any] | None:
    """The checkpoint at `url`, or None if there is none."""
    data = _read(url)
    return None if data is None else torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def save_json(url: str, data: dict[str, Any]) -> None:
    """Write a small JSON record (e.g. a training run's ids) atomically."""
    _write_atomically(url, json.dumps(data, indent=2).encode())


def load_json(url: str) -> dict[str, Any] | None:
    """The JSON record at `url`, or None if there is none."""
    data = _read(url)
    return None if data is None else json.loads(data)
