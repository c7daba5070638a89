"""The PyTorch TV-L1 on CPU: known motions, agreement with OpenCV, batching, compiled kernels, validation."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

from im2flow_core.frame_flows import iter_frame_flows
from im2flow_core.median_filters import median_filter, median_filter_network, median_network
from im2flow_core.optical_flow import TVL1Estimator, TVL1Params, create_estimator
from im2flow_core.tvl1_torch import (
    TorchTVL1Estimator,
    divergence,
    forward_gradient,
    pyramid_sizes,
    tvl1_flow,
)
from tests.conftest import real_texture

FAST = TVL1Params(nscales=3, warps=3, outer_iterations=4)


def _gray(which: int = 0, height: int = 48, width: int = 64) -> np.ndarray:
    return cv2.cvtColor(real_texture(height + 40, width + 40, which), cv2.COLOR_RGB2GRAY)


def _warped_pair(flow_fn, which: int = 0, height: int = 48, width: int = 64):
    """frame0 = a crop of a real photo; frame1 sampled so that frame0[y, x] = frame1[y + v, x + u]."""
    big = _gray(which, height, width).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (np.asarray(c, np.float32) for c in flow_fn(xx, yy))
    frame0 = big[20 : 20 + height, 20 : 20 + width]
    frame1 = cv2.remap(big, xx + 20 - u, yy + 20 - v, cv2.INTER_CUBIC)
    return (np.clip(np.rint(frame0), 0, 255).astype(np.uint8), np.clip(np.rint(frame1), 0, 255).astype(np.uint8),
            np.stack([u, v], -1))


def _interior_epe(a: np.ndarray, b: np.ndarray, margin: int = 6) -> float:
    return float(np.linalg.norm(a - b, axis=-1)[margin:-margin, margin:-margin].mean())


def test_known_translation_and_rotation_are_recovered():
    frame0, frame1, truth = _warped_pair(lambda x, y: (np.full_like(x, 1.5), np.full_like(y, -0.75)))
    flow = TorchTVL1Estimator(device="cpu").calc(frame0, frame1)
    assert flow.shape == (48, 64, 2) and flow.dtype == np.float32
    assert _interior_epe(flow, truth) < 0.15
    angle = np.deg2rad(3.0)  # rotation about the centre: u = −ω·(y − cy), v = ω·(x − cx)
    frame0, frame1, truth = _warped_pair(lambda x, y: (-angle * (y - 24), angle * (x - 32)), which=1)
    flow = TorchTVL1Estimator(device="cpu").calc(frame0, frame1)
    assert _interior_epe(flow, truth) < 0.25
    assert np.sign(flow[5:15, 20:44, 0].mean()) > 0 and np.sign(flow[33:43, 20:44, 0].mean()) < 0  # it turns


def test_agrees_with_opencv_at_the_same_parameters():
    frame0, frame1, truth = _warped_pair(lambda x, y: (1.2 + 0.4 * np.sin(x / 9), -0.5 + 0.3 * np.cos(y / 7)))
    ours = TorchTVL1Estimator(device="cpu").calc(frame0, frame1)
    theirs = TVL1Estimator().calc(frame0, frame1)
    assert float(np.linalg.norm(ours - theirs, axis=-1).mean()) < 0.15
    assert _interior_epe(ours, truth) <= 1.05 * _interior_epe(theirs, truth) + 0.02


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_batch_gives_each_pair_its_own_result(compiled):
    pairs = [_warped_pair(lambda x, y, s=s: (np.full_like(x, s), np.zeros_like(y)), which=int(s) % 2)
             for s in (0.0, 0.8, 2.0)]  # a still pair converges at once, the others later
    f0 = torch.from_numpy(np.stack([p[0] for p in pairs]))
    f1 = torch.from_numpy(np.stack([p[1] for p in pairs]))
    batched = tvl1_flow(f0, f1, FAST, compile=compiled).numpy()
    for i in range(3):
        alone = tvl1_flow(f0[i : i + 1], f1[i : i + 1], FAST, compile=compiled).numpy()[0]
        np.testing.assert_allclose(batched[i], alone, atol=1e-4)
    estimator = TorchTVL1Estimator(FAST, device="cpu", batch_size=2, compile=compiled)
    frames = [np.repeat(p[k][..., None], 3, 2) for p in pairs[:2] for k in (0, 1)]  # 4 frames → 3 flows
    items = list(iter_frame_flows(frames, estimator, 1))
    assert [i.index for i in items] == [0, 1, 2, 3] and items[-1].flow is None
    for item, (a, b) in zip(items[:3], zip(frames, frames[1:])):
        single = tvl1_flow(torch.from_numpy(a[None, ..., 0]), torch.from_numpy(b[None, ..., 0]), FAST,
                           compile=compiled).numpy()[0]
        np.testing.assert_allclose(item.flow, single, atol=1e-4)


def test_operators_and_pyramid_follow_opencv():
    u = torch.randn(2, 7, 9, dtype=torch.float64)
    p1, p2 = torch.randn(2, 7, 9, dtype=torch.float64), torch.randn(2, 7, 9, dtype=torch.float64)
    p1[:, :, -1], p2[:, -1] = 0, 0  # as for any p built from forward gradients (TV-L1's dual variable)
    ux, uy = forward_gradient(u)
    # div is the negative adjoint of the forward gradient: <∇u, p> = −<u, div p>
    assert torch.allclose((ux * p1 + uy * p2).sum(), -(u * divergence(p1, p2)).sum())
    assert pyramid_sizes(256, 340, TVL1Params()) == [(256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
    assert pyramid_sizes(24, 40, TVL1Params()) == [(24, 40), (19, 32)]  # stops before a side < 16


def test_compiled_kernels_compute_the_eager_flow():
    frame0, frame1, truth = _warped_pair(lambda x, y: (1.2 + 0.4 * np.sin(x / 9), -0.5 + 0.3 * np.cos(y / 7)))
    f0, f1 = torch.from_numpy(frame0[None]), torch.from_numpy(frame1[None])
    eager = tvl1_flow(f0, f1).numpy()[0]
    compiled = tvl1_flow(f0, f1, compile=True).numpy()[0]
    # Fused kernels round differently (last bits), which may move a convergence test by an iteration.
    # (0.004 px here; a wrong kernel is off by pixels.)
    assert float(np.linalg.norm(eager - compiled, axis=-1).mean()) < 0.03
    assert abs(_interior_epe(compiled, truth) - _interior_epe(eager, truth)) < 0.02


def test_median_network_selects_the_median():
    # 0-1 principle: a comparator network that selects the median of every 0/1 input does so for all inputs.
    for count in (9, 25):
        for start in range(0, 1 << count, 1 << 21):
            codes = np.arange(start, min(start + (1 << 21), 1 << count), dtype=np.uint32)
            wires = [(codes >> k & 1).astype(bool) for k in range(count)]
            ones = np.sum(wires, axis=0)
            for i, j, min_needed, max_needed in median_network(count):
                low, high = wires[i] & wires[j], wires[i] | wires[j]
                wires[i], wires[j] = (low if min_needed else wires[i]), (high if max_needed else wires[j])
            assert np.array_equal(wires[count // 2], ones > count // 2)
    assert len(median_network(25)) < 120  # pruned: a full sort of 25 values takes more
    u = torch.randint(0, 4, (3, 11, 13)).float()  # many ties
    for size in (3, 5):
        assert torch.equal(median_filter_network(u, size), median_filter(u, size))
    assert torch.equal(median_filter(u, 5)[0], torch.from_numpy(cv2.medianBlur(u[0].numpy(), 5)))


def test_without_a_compiler_the_estimator_warns_and_computes_uncompiled(tmp_path):
    frame0, frame1, _ = _warped_pair(lambda x, y: (np.full_like(x, 1.0), np.zeros_like(y)), height=24, width=32)
    np.save(tmp_path / "f0.npy", frame0)
    np.save(tmp_path / "f1.npy", frame1)
    script = textwrap.dedent(f"""
        import warnings, numpy as np, torch
        from im2flow_core.optical_flow import TVL1Params
        from im2flow_core.tvl1_torch import TorchTVL1Estimator, tvl1_flow
        f0, f1 = np.load("{tmp_path}/f0.npy"), np.load("{tmp_path}/f1.npy")
        params = TVL1Params(nscales=2, warps=2, outer_iterations=2)
        estimator = TorchTVL1Estimator(params, device="cpu")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            flow = estimator.calc(f0, f1)
        assert not estimator.compile, "fell back"
        assert any("could not build the TV-L1 kernels" in str(w.message) for w in caught), caught
        expected = tvl1_flow(torch.from_numpy(f0[None]), torch.from_numpy(f1[None]), params)[0].numpy()
        assert np.array_equal(flow, expected)
        print("FELL BACK")
    """)
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}  # nothing compiled before may be reused
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0 and "FELL BACK" in done.stdout, done.stderr[-3000:]


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="gamma"):
        TorchTVL1Estimator(TVL1Params(gamma=0.1), device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        TorchTVL1Estimator(device="cpu", batch_size=0)
    with pytest.raises(ValueError, match="median_filtering must be odd"):
        TorchTVL1Estimator(TVL1Params(median_filtering=4), device="cpu")
    with pytest.raises(ValueError, match="odd"):
        median_network(24)
    with pytest.raises(ValueError, match="equal"):
        TorchTVL1Estimator(device="cpu").calc(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="3×3"):
        tvl1_flow(torch.zeros(1, 2, 8), torch.zeros(1, 2, 8))
    with pytest.MonkeyPatch.context() as patch:  # a machine without a GPU, whatever this one has
        patch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            TorchTVL1Estimator(device="cuda")
    estimator = create_estimator("tvl1-torch", TVL1Params(warps=2), device="cpu", batch_size=4)
    assert isinstance(estimator, TorchTVL1Estimator) and estimator.resolved_params()["warps"] == 2
