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
iterate), so a pair's flow does not depend on the batch it was computed in.

Frames: `(N, H, W)` grayscale, uint8 or float in [0, 255]. Flow: `(N, H, W, 2)` float32 px, u to
the right, v down, such that frame0[y, x] ≈ frame1[y + v, x + u] (the convention of
`optical_flow`). The illumination term (γ > 0) is not implemented.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from im2flow_core.devices import resolve_device
from im2flow_core.optical_flow import TVL1Params

_MIN_PYRAMID_SIDE = 16
_FLOAT_EPS = torch.finfo(torch.float32).eps


def _check(frames0: torch.Tensor, frames1: torch.Tensor, params: TVL1Params) -> None:
    if params.gamma != 0:
        raise ValueError("the torch TV-L1 does not implement the illumination term: gamma must be 0")
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
    dx = torch.zeros_like(u)
    dy = torch.zeros_like(u)
    dx[:, :, :-1] = u[:, :, 1:] - u[:, :, :-1]
    dy[:, :-1] = u[:, 1:] - u[:, :-1]
    return dx, dy


def divergence(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Backward-difference divergence of the field (p1, p2) `(N, H, W)`, adjoint of `forward_gradient`."""
    div = p1.clone()
    div[:, :, 1:] -= p1[:, :, :-1]
    div += p2
    div[:, 1:] -= p2[:, :-1]
    return div


def median_filter(u: torch.Tensor, size: int) -> torch.Tensor:
    """`size`×`size` median of `(N, H, W)` with replicated borders (cv2.medianBlur on float)."""
    pad = size // 2
    padded = F.pad(u[:, None], (pad, pad, pad, pad), mode="replicate")
    patches = padded.unfold(2, size, 1).unfold(3, size, 1)  # (N, 1, H, W, size, size)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values[:, 0]


def _warp(images: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """Sample `(N, C, H, W)` at (x + u1, y + u2): bicubic, zero outside (cv2.remap, INTER_CUBIC, constant)."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device, dtype=images.dtype),
                            torch.arange(w, device=images.device, dtype=images.dtype), indexing="ij")
    gx = (xs + u1) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + u2) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(images, grid, mode="bicubic", padding_mode="zeros", align_corners=True)


def _one_scale(i0: torch.Tensor, i1: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor,
               params: TVL1Params) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine flow (u1, u2) `(N, H, W)` on one pyramid level; returns the new flow."""
    n, h, w = i0.shape
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    theta = params.theta
    scaled_epsilon = params.epsilon * params.epsilon * h * w
    i1x, i1y = centered_gradient(i1)
    stack = torch.stack([i1, i1x, i1y], dim=1)
    p11, p12, p21, p22 = (torch.zeros_like(i0) for _ in range(4))
    for _ in range(params.warps):
        warped = _warp(stack, u1, u2)
        i1w, i1wx, i1wy = warped[:, 0], warped[:, 1], warped[:, 2]
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
        has_grad = grad > _FLOAT_EPS
        safe_grad = torch.where(has_grad, grad, torch.ones_like(grad))
        active = torch.ones(n, dtype=torch.bool, device=i0.device)  # pairs not yet converged in this warp
        for _ in range(params.outer_iterations):
            if not bool(active.any()):
                break
            if params.median_filtering > 1:
                mask = active[:, None, None]
                u1 = torch.where(mask, median_filter(u1, params.median_filtering), u1)
                u2 = torch.where(mask, median_filter(u2, params.median_filtering), u2)
            for _ in range(params.inner_iterations):
                mask = active[:, None, None]
                # Thresholding step: v minimises the linearised data term near u.
                rho = rho_c + i1wx * u1 + i1wy * u2
                fi = torch.where(has_grad, -rho / safe_grad, torch.zeros_like(rho))
                fi = torch.where(rho < -l_t * grad, torch.full_like(rho, l_t), fi)
                fi = torch.where(rho > l_t * grad, torch.full_like(rho, -l_t), fi)
                v1 = u1 + fi * i1wx
                v2 = u2 + fi * i1wy
                new_u1 = v1 + theta * divergence(p11, p12)
                new_u2 = v2 + theta * divergence(p21, p22)
                error = ((new_u1 - u1) ** 2 + (new_u2 - u2) ** 2).sum(dim=(1, 2))
                everyone = bool(active.all())  # the common case: no masking needed
                u1 = new_u1 if everyone else torch.where(mask, new_u1, u1)
                u2 = new_u2 if everyone else torch.where(mask, new_u2, u2)
                u1x, u1y = forward_gradient(u1)
                u2x, u2y = forward_gradient(u2)
                ng1 = 1.0 + taut * torch.sqrt(u1x * u1x + u1y * u1y)
                ng2 = 1.0 + taut * torch.sqrt(u2x * u2x + u2y * u2y)
                duals = [(p11 + taut * u1x) / ng1, (p12 + taut * u1y) / ng1,
                         (p21 + taut * u2x) / ng2, (p22 + taut * u2y) / ng2]
                if not everyone:
                    duals = [torch.where(mask, new, old) for new, old in zip(duals, (p11, p12, p21, p22))]
                p11, p12, p21, p22 = duals
                active = active & (error > scaled_epsilon)
                if not bool(active.any()):
                    break
    return u1, u2


def tvl1_flow(frames0: torch.Tensor, frames1: torch.Tensor, params: TVL1Params | None = None) -> torch.Tensor:
    """TV-L1 flow `(N, H, W, 2)` float32 from `frames0[i]` to `frames1[i]` (both `(N, H, W)`).

    Runs where the frames are (move them to CUDA for the GPU). See the module doc for the method.
    """
    params = params or TVL1Params()
    _check(frames0, frames1, params)
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
            u1, u2 = _one_scale(levels[level][0], levels[level][1], u1, u2, params)
            if level == 0:
                break
            up = _resize(torch.stack([u1, u2], dim=1), sizes[level - 1]) / params.scale_step
            u1, u2 = up[:, 0], up[:, 1]
        return torch.stack([u1, u2], dim=-1)


class TorchTVL1Estimator:
    """`FlowEstimator` over `tvl1_flow`, with `calc_batch` for many pairs at once."""

    def __init__(self, params: TVL1Params | None = None, device: str = "auto", batch_size: int = 16) -> None:
        self.params = params or TVL1Params()
        if self.params.gamma != 0:
            raise ValueError("the torch TV-L1 does not implement the illumination term: gamma must be 0")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.batch_size = batch_size

    def calc_batch(self, frames0: list, frames1: list) -> list:
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
        flow = tvl1_flow(i0, i1, self.params).cpu().numpy()
        return list(flow)

    def calc(self, frame0, frame1):  # noqa: ANN001, ANN201 - FlowEstimator protocol
        """See FlowEstimator.calc."""
        return self.calc_batch([frame0], [frame1])[0]

    def resolved_params(self) -> dict[str, object]:
        """The parameters the computation uses (OpenCV's names)."""
        p = self.params
        return {"tau": p.tau, "lambda": p.lambda_, "theta": p.theta, "nscales": p.nscales, "warps": p.warps,
                "epsilon": p.epsilon, "inner_iterations": p.inner_iterations,
                "outer_iterations": p.outer_iterations, "scale_step": p.scale_step, "gamma": p.gamma,
                "median_filtering": p.median_filtering}
