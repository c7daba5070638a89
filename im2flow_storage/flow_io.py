"""Reading and writing flow fields as Middlebury `.flo` files (the format other flow tools exchange).

Format (Baker et al.): the float 202021.25 ("PIEH"), int32 width, int32 height, then
height × width × 2 float32 (u, v) little-endian, row-major.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_TAG = np.float32(202021.25)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write flow `(H, W, 2)` float32 px (u, v) to `path`."""
    flow = np.asarray(flow, dtype="<f4")
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    with open(path, "wb") as handle:
        handle.write(np.array([_TAG], "<f4").tobytes())
        handle.write(np.array([flow.shape[1], flow.shape[0]], "<i4").tobytes())
        handle.write(flow.tobytes())


def read_flo(path: str | Path) -> np.ndarray:
    """Read a `.flo` file into `(H, W, 2)` float32 px (u, v); ValueError if it is not one."""
    data = Path(path).read_bytes()
    if len(data) < 12 or np.frombuffer(data[:4], "<f4")[0] != _TAG:
        raise ValueError(f"{path}: not a Middlebury .flo file (bad tag)")
    width, height = (int(v) for v in np.frombuffer(data[4:12], "<i4"))
    expected = 12 + width * height * 8
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, expected {expected} for {width}×{height}")
    return np.frombuffer(data[12:], "<f4").reshape(height, width, 2).astype(np.float32)
