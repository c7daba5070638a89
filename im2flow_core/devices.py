"""Which torch device to compute on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when torch sees a GPU, else CPU; "cuda" without one is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(name)
