"""TV-L1 optical flow in PyTorch, batched over frame pairs, on CUDA or CPU.

The duality-based TV-L1 of Zach, Pock & Bischof (2007) in the form of OpenCV's
`cv::optflow::DualTVL1OpticalFlow` (after Sánchez Pérez et al.), step for step, with the same
parameters and defaults (`TVL1Params`):
- a pyramid of `nscales` levels, each `scale_step` × the previous (bilinear), stopping before a
  side drops under 16 px; the coarsest level starts from zero flow, and each level's flow is
  upsampled (bilinear) and divided by `scale_step` to start the next finer one;
- on each level, `warps` warpings of frame 1 (bicubic, zero outside the image) around the current
  flow, with centred differences for its gradient;
- for each warping, up to `outer_iterations` × `inner_iterations` steps of: the thresholding step
  for v (data term, λ·θ), u = v + θ·div p, p = (p + τ/θ·∇u) / (1 + τ/θ·|∇u|) (forward
  differences, OpenCV's border rules), stopping once Σ|u − u_prev|² ≤ ε²·area; a
  `median_filtering` × `median_filtering` median filter of u before each outer iteration.
Each pair of a batch stops on its own criterion (converged pairs are frozen while the others
iterate, and dropped from the working tensors once a quarter of them have stopped), so a pair's
flow does not depend on the batch it was computed in, and a batch costs about the sum of its
pairs' iterations.

Speed: the inner iteration (`tvl1_step`) is written as elementwise operations and shifts, and the
5×5 median as a comparator network (`median_network`), so that `torch.compile` turns each into one
or two fused kernels (`compile=True`): ~7× the uncompiled code on CPU. Compiled and uncompiled flow
differ only by float rounding (which may move a convergence test by an iteration). On CUDA the
loop asks the device whether all pairs have converged every 10 iterations, not every one.

Frames: `(N, H, W)` grayscale, uint8 or float in [0, 255]. Flow: `(N, H, W, 2)` float32 px, u to
the right, v down, such that frame0[y, x] ≈ frame1[y + v, x + u] (the convention of
`optical_flow`). The illumination term (γ > 0) is not implemented.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from im2flow_core.devices import resolve_device
from im2flow_core.flow_params import TVL1Params
from im2flow_core.median_filters import masked_median, masked_median_network, replicate_pad

_MIN_PYRAMID_SIDE = 16
_FLOAT_EPS = torch.finfo(torch.float32).eps


def _check_params(params: TVL1Params) -> None:
    if params.gamma != 0:
        raise ValueError("the torch TV-L1 does not implement the illumination term: gamma must be 0")
    if params.median_filtering > 1 and params.median_filtering % 2 == 0:
        raise ValueError(f"median_filtering must be odd (or 1: none), got {params.median_filtering}")


def _check(frames0: torch.Tensor, frames1: torch.Tensor, params: TVL1Params) -> None:
    _check_params(params)
    if frames0.shape != frames1.shape or frames0.ndim != 3:
        raise ValueError(f"expected two equal (N, H, W) frame batches, got {tuple(frames0.shape)} "
                         f"and {tuple(frames1.shape)}")
    if min(frames0.shape[1:]) < 3:
        raise ValueError(f"frames must be at least 3×3 px, got {tuple(frames0.shape[1:])}")


def pyramid_sizes(height: int, width: int, params: TVL1Params) -> list[tuple[int, int]]:
    """(H, W) of each pyramid level, finest first, as OpenCV builds them (rounded, ≥ 16 px)."""
    sizes = [(height, width)]
    for _ in range(1, params.nscales):
        h, w = sizes[-1]
        nh, nw = int(round(h * params.scale_step)), int(round(w * params.scale_step))
        if nh < _MIN_PYRAMID_SIDE or nw < _MIN_PYRAMID_SIDE:
            break
        sizes.append((nh, nw))
    return sizes


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of `(N, C, H, W)` with pixel centres at half-integers (OpenCV's INTER_LINEAR)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def centered_gradient(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred differences of `(N, H, W)`; one-sided halves at the borders (OpenCV's rule)."""
    dx = torch.empty_like(image)
    dy = torch.empty_like(image)
    dx[:, :, 1:-1] = 0.5 * (image[:, :, 2:] - image[:, :, :-2])
    dx[:, :, 0] = 0.5 * (image[:, :, 1] - image[:, :, 0])
    dx[:, :, -1] = 0.5 * (image[:, :, -1] - image[:, :, -2])
    dy[:, 1:-1] = 0.5 * (image[:, 2:] - image[:, :-2])
    dy[:, 0] = 0.5 * (image[:, 1] - image[:, 0])
    dy[:, -1] = 0.5 * (image[:, -1] - image[:, -2])
    return dx, dy


def forward_gradient(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of `(N, H, W)`, zero in the last column (dx) and last row (dy)."""
    dx = F.pad(u[:, :, 1:] - u[:, :, :-1], (0, 1))
    dy = F.pad(u[:, 1:] - u[:, :-1], (0, 0, 0, 1))
    return dx, dy


def divergence(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence of the field (p1, p2) `(N, H, W)`, adjoint of `forward_gradient`."""
    return p1 - F.pad(p1[:, :, :-1], (1, 0)) + p2 - F.pad(p2[:, :-1], (0, 0, 1, 0))


def _planes(x: torch.Tensor) -> list[torch.Tensor]:
    """The channels of `(N, C, H, W)` as `(N, H, W)` tensors, each with its own storage and plain strides.

    The compiled kernels guard on their inputs' strides and storage offsets: views into one tensor
    (whose stride even depends on C when N = 1) would make them recompile.
    """
    return [plane.clone(memory_format=torch.contiguous_format) for plane in x.unbind(1)]


def _warp(images: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """Sample `(N, C, H, W)` at (x + u1, y + u2): bicubic, zero outside (cv2.remap, INTER_CUBIC, constant)."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device, dtype=images.dtype),
                            torch.arange(w, device=images.device, dtype=images.dtype), indexing="ij")
    gx = (xs + u1) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + u2) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def tvl1_step(u1: torch.Tensor, u2: torch.Tensor, p11: torch.Tensor, p12: torch.Tensor, p21: torch.Tensor,
              p22: torch.Tensor, rho_c: torch.Tensor, i1wx: torch.Tensor, i1wy: torch.Tensor, grad: torch.Tensor,
              mask: torch.Tensor, l_t: float, theta: float, taut: float) -> tuple[torch.Tensor, ...]:
    """One inner TV-L1 iteration on `(N, H, W)` float32 state; returns (u1, u2, p11, p12, p21, p22, error).

    Thresholding step for v (data term linearised around the warp: `rho_c`, gradient `i1wx`, `i1wy`,
    `grad` = |∇I1w|²), primal step u = v + θ·div p, dual step p = (p + τ/θ·∇u) / (1 + τ/θ·|∇u|).
    Pairs where `mask` `(N, 1, 1)` bool is False keep their state. `error` `(N,)` is Σ|u_new − u|²
    per pair (the convergence test). Written as elementwise ops and shifts only, so that
    `torch.compile` fuses an iteration into a few kernels instead of ~40 passes over memory.
    """
    rho = rho_c + i1wx * u1 + i1wy * u2
    fi = torch.where(grad > _FLOAT_EPS, -rho / torch.where(grad > _FLOAT_EPS, grad, 1.0), 0.0)
    fi = torch.where(rho < -l_t * grad, l_t, fi)
    fi = torch.where(rho > l_t * grad, -l_t, fi)
    new_u1 = u1 + fi * i1wx + theta * divergence(p11, p12)
    new_u2 = u2 + fi * i1wy + theta * divergence(p21, p22)
    error = ((new_u1 - u1) ** 2 + (new_u2 - u2) ** 2).sum(dim=(1, 2))
    u1 = torch.where(mask, new_u1, u1)
    u2 = torch.where(mask, new_u2, u2)
    u1x, u1y = forward_gradient(u1)
    u2x, u2y = forward_gradient(u2)
    ng1 = 1.0 + taut * torch.sqrt(u1x * u1x + u1y * u1y)
    ng2 = 1.0 + taut * torch.sqrt(u2x * u2x + u2y * u2y)
    p11 = torch.where(mask, (p11 + taut * u1x) / ng1, p11)
    p12 = torch.where(mask, (p12 + taut * u1y) / ng1, p12)
    p21 = torch.where(mask, (p21 + taut * u2x) / ng2, p21)
    p22 = torch.where(mask, (p22 + taut * u2y) / ng2, p22)
    return u1, u2, p11, p12, p21, p22, error


def tvl1_step_(u1: torch.Tensor, u2: torch.Tensor, p11: torch.Tensor, p12: torch.Tensor, p21: torch.Tensor,
               p22: torch.Tensor, rho_c: torch.Tensor, i1wx: torch.Tensor, i1wy: torch.Tensor, grad: torch.Tensor,
               mask: torch.Tensor, l_t: float, theta: float, taut: float) -> torch.Tensor:
    """`tvl1_step` that updates u1, u2, p11 … p22 in place; returns `error` `(N,)`.

    Compiled, the new state is written into the old buffers: fewer and smaller allocations per
    iteration (each a page-faulting mmap where glibc's mmap threshold is pinned low, as in Dask workers).
    """
    state = (u1, u2, p11, p12, p21, p22)
    *new, error = tvl1_step(*state, rho_c, i1wx, i1wy, grad, mask, l_t, theta, taut)
    for old, value in zip(state, new):
        old.copy_(value)
    return error


class Kernels(NamedTuple):
    """The two hot operations of `tvl1_flow`: an inner iteration (in place) and the outer median filter."""

    step: Callable[..., torch.Tensor]
    median: Callable[..., torch.Tensor]


EAGER = Kernels(tvl1_step_, masked_median)


@functools.cache
def compiled_kernels() -> Kernels:
    """`tvl1_step_` and the median filter compiled by `torch.compile` (C++/OpenMP on CPU, Triton on CUDA).

    Compiled lazily on first call, with dynamic shapes, so that every pyramid level and batch size
    reuses a few kernels; Inductor caches them on disk for later processes.
    """
    return Kernels(torch.compile(tvl1_step_, dynamic=True), torch.compile(masked_median_network, dynamic=True))


def _one_scale(i0: torch.Tensor, i1: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor,
               params: TVL1Params, kernels: Kernels, check_every: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine flow (u1, u2) `(N, H, W)` on one pyramid level; returns the new flow."""
    i1x, i1y = centered_gradient(i1)
    stack = torch.stack([i1, i1x, i1y], dim=1)
    state = [u1, u2, *(torch.zeros_like(i0) for _ in range(4))]  # u1, u2, p11, p12, p21, p22
    for _ in range(params.warps):
        warped = _warp(stack, state[0], state[1])
        i1w, i1wx, i1wy = _planes(warped)
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = i1w - i1wx * state[0] - i1wy * state[1] - i0
        _iterate(state, [rho_c, i1wx, i1wy, grad], params, kernels, check_every)
    return state[0], state[1]


def _iterate(state: list[torch.Tensor], data: list[torch.Tensor], params: TVL1Params, kernels: Kernels,
             check_every: int) -> None:
    """One warping's outer × inner iterations on `state` (u1, u2, p11 … p22, each `(N, H, W)`), in place.

    `data` is (rho_c, i1wx, i1wy, grad) of the warping. Each pair stops on its own convergence test
    and is frozen from then on. Once a quarter of the pairs being iterated have stopped, they are
    dropped from the working tensors (the rest gathered into smaller ones), so that a batch costs
    about the sum of its pairs' iterations rather than N × those of its slowest pair.
    """
    n, h, w = state[0].shape
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    scaled_epsilon = params.epsilon * params.epsilon * h * w
    rows = None  # batch rows of the working tensors; None while they are `state` itself
    work = list(state)
    active = torch.ones(n, dtype=torch.bool, device=state[0].device)  # working pairs not yet converged
    for _ in range(params.outer_iterations):
        if not bool(active.any()):
            break
        if params.median_filtering > 1:
            # Padded outside the compiled kernel: a pad fused into it becomes clamped, unvectorised loads.
            both = torch.cat(work[:2])
            both = kernels.median(replicate_pad(both, params.median_filtering // 2), both,
                                  active.repeat(2)[:, None, None], params.median_filtering)
            work[0].copy_(both[: len(active)])
            work[1].copy_(both[len(active) :])
        for inner in range(1, params.inner_iterations + 1):
            error = kernels.step(*work, *data, active[:, None, None], l_t, params.theta, taut)
            active = active & (error > scaled_epsilon)
            if inner % check_every:
                continue  # asking a GPU how many pairs are left stalls its queue
            remaining = int(active.sum())
            if remaining == 0:
                break
            if remaining <= 0.75 * len(active):
                keep, done = active.nonzero()[:, 0], (~active).nonzero()[:, 0]
                if rows is not None:  # the finished pairs' values go back to the batch
                    for full, part in zip(state, work):
                        full.index_copy_(0, rows[done], part.index_select(0, done))
                rows = keep if rows is None else rows[keep]
                work = [part.index_select(0, keep) for part in work]
                data = [part.index_select(0, keep) for part in data]
                active = torch.ones(remaining, dtype=torch.bool, device=active.device)
    if rows is not None:
        for full, part in zip(state, work):
            full.index_copy_(0, rows, part)


def tvl1_flow(frames0: torch.Tensor, frames1: torch.Tensor, params: TVL1Params | None = None,
              compile: bool = False) -> torch.Tensor:
    """TV-L1 flow `(N, H, W, 2)` float32 from `frames0[i]` to `frames1[i]` (both `(N, H, W)`).

    Runs where the frames are (move them to CUDA for the GPU). `compile=True` runs each iteration
    with `compiled_kernels()` (several times faster; the first call compiles, and fails where
    Inductor has no C++ compiler or Triton). See the module doc for the method.
    """
    params = params or TVL1Params()
    _check(frames0, frames1, params)
    kernels = compiled_kernels() if compile else EAGER
    # Asking the GPU whether all pairs have converged stalls its queue; on CPU the answer is free.
    check_every = 1 if frames0.device.type == "cpu" else 10
    with torch.no_grad():
        i0 = frames0.to(torch.float32)
        i1 = frames1.to(torch.float32)
        sizes = pyramid_sizes(i0.shape[1], i0.shape[2], params)
        levels = [(i0, i1)]
        for size in sizes[1:]:
            prev0, prev1 = levels[-1]
            both = _resize(torch.stack([prev0, prev1], dim=1), size)
            levels.append((both[:, 0], both[:, 1]))
        n = i0.shape[0]
        u1 = torch.zeros((n, *sizes[-1]), dtype=torch.float32, device=i0.device)
        u2 = torch.zeros_like(u1)
        for level in range(len(sizes) - 1, -1, -1):
            level0, level1 = _planes(torch.stack(levels[level], dim=1))
            u1, u2 = _one_scale(level0, level1, u1, u2, params, kernels, check_every)
            if level == 0:
                break
            u1, u2 = _planes(_resize(torch.stack([u1, u2], dim=1), sizes[level - 1]) / params.scale_step)
        return torch.stack([u1, u2], dim=-1)


class TorchTVL1Estimator:
    """`FlowEstimator` over `tvl1_flow`, with `calc_batch` for many pairs at once.

    `compile=True` (the default) runs the compiled kernels; where they cannot be built (no C++
    compiler, no Triton) it warns once, naming why, and computes uncompiled (same flow, slower).
    """

    def __init__(self, params: TVL1Params | None = None, device: str = "auto", batch_size: int = 16,
                 compile: bool = True) -> None:
        self.params = params or TVL1Params()
        _check_params(self.params)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.compile = compile

    def calc_batch(self, frames0: list[np.ndarray], frames1: list[np.ndarray]) -> list[np.ndarray]:
        """Flows `(H, W, 2) float32` for pairs of equal-size `(H, W) uint8` frames (NumPy in, NumPy out)."""
        if len(frames0) != len(frames1):
            raise ValueError("frames0 and frames1 differ in length")
        if not frames0:
            return []
        for a, b in zip(frames0, frames1):
            if a.shape != b.shape or a.ndim != 2 or a.dtype != np.uint8 or a.shape != frames0[0].shape:
                raise ValueError(f"expected equal (H, W) uint8 frames, got {a.shape} {a.dtype} and {b.shape} {b.dtype}")
        i0 = torch.from_numpy(np.stack(frames0)).to(self.device)
        i1 = torch.from_numpy(np.stack(frames1)).to(self.device)
        if self.compile:
            try:
                return list(tvl1_flow(i0, i1, self.params, compile=True).cpu().numpy())
            except torch._dynamo.exc.TorchDynamoException as exc:
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warnings.warn(f"torch.compile could not build the TV-L1 kernels ({first_line}); computing "
                              "uncompiled (same flow, several times slower)", RuntimeWarning, stacklevel=2)
                self.compile = False
        return list(tvl1_flow(i0, i1, self.params).cpu().numpy())

    def calc(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """See FlowEstimator.calc."""
        return self.calc_batch([frame0], [frame1])[0]

    def resolved_params(self) -> dict[str, object]:
        """The parameters the computation uses (OpenCV's names)."""
        p = self.params
        return {"tau": p.tau, "lambda": p.lambda_, "theta": p.theta, "nscales": p.nscales, "warps": p.warps,
                "epsilon": p.epsilon, "inner_iterations": p.inner_iterations,
                "outer_iterations": p.outer_iterations, "scale_step": p.scale_step, "gamma": p.gamma,
                "median_filtering": p.median_filtering}
