from pathlib import Path

import numpy as np
import pytest

from im2flow_storage.flow_io import read_flo, write_flo


def test_flo_round_trip(tmp_path):
    flow = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    write_flo(tmp_path / "a.flo", flow)
    np.testing.assert_array_equal(read_flo(tmp_path / "a.flo"), flow)
    (tmp_path / "b.flo").write_bytes(b"nope")
    with pytest.raises(ValueError):
        read_flo(tmp_path / "b.flo")


def test_flo_bytes_follow_the_middlebury_layout(tmp_path):
    """Middlebury .flo: b"PIEH" (202021.25 as float32 LE), int32 width, int32 height, then row-major (u, v) float32."""
    import struct

    flow = np.zeros((2, 3, 2), np.float32)
    flow[..., 0] = [[1, 2, 3], [4, 5, 6]]  # u
    flow[..., 1] = [[-1, -2, -3], [-4, -5, -6]]  # v
    write_flo(tmp_path / "a.flo", flow)
    data = (tmp_path / "a.flo").read_bytes()
    assert data[:4] == b"PIEH" and struct.unpack("<f", data[:4])[0] == 202021.25
    assert struct.unpack("<ii", data[4:12]) == (3, 2)  # width first, then height
    assert len(data) == 12 + 2 * 3 * 2 * 4
    values = struct.unpack("<12f", data[12:])
    assert values == (1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6)  # row by row, u and v interleaved


def test_local_copy_of_a_remote_file_is_removed_afterwards(tmp_path):
    import fsspec

    from im2flow_storage.paths import local_copy

    with fsspec.open("memory://bucket/phi.pt", "wb") as handle:
        handle.write(b"weights")
    with local_copy("memory://bucket/phi.pt") as path:
        assert open(path, "rb").read() == b"weights"
        folder = Path(path).parent
    assert not folder.exists()
    with local_copy(str(tmp_path / "x.pt")) as path:  # a local file is used where it is
        assert path == str(tmp_path / "x.pt")
