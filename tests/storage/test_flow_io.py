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
