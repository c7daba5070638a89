"""The Im2Flow generator G: a pix2pix-style U-Net from one RGB frame to the flow image.

Input: `(N, 3, H, W)` float RGB in [-1, 1]. Output, "model space": `(N, 3, H, W)` with
F1 = sin θ and F2 = cos θ in [-1, 1] (tanh) and F3 = M / magnitude_scale_px ≥ 0 (softplus by default, so
large motions are not clipped as by the released code's tanh). `to_flow_image` turns that into
the store's flow image (sin θ, cos θ, M in px). H and W must be divisible by 2**depth.

Architecture as Isola et al. 2017 / the released Im2Flow code: 4×4 stride-2 convolutions, LeakyReLU
0.2 down, ReLU up, BatchNorm except on the outermost layers, dropout 0.5 in the innermost
`n_dropout` decoder blocks, skip concatenations, weights N(0, 0.02). The recursion makes depth a
parameter (pix2pix's UnetSkipConnectionBlock).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from im2flow_core.model_configs import GeneratorConfig  # noqa: F401 - re-exported


class _Block(nn.Module):
    """One U-Net level: down → (inner) → up, with the input concatenated to the output."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None, *, outermost: bool = False,
                 innermost: bool = False, dropout: bool = False, in_channels: int | None = None) -> None:
        super().__init__()
        self.outermost = outermost
        in_channels = in_channels or outer
        down = nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False if not outermost else True)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1)
            layers = [down, submodule, nn.ReLU(True), up]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, nn.BatchNorm2d(outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), submodule, nn.ReLU(True), up,
                      nn.BatchNorm2d(outer)] + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*[m for m in layers if m is not None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """G: `(N, 3, H, W)` RGB in [-1, 1] → `(N, 3, H, W)` flow image in model space (see module doc)."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config or GeneratorConfig()
        c = self.config
        width = [min(c.ngf * 2**i, c.ngf * 8) for i in range(c.depth)]  # filters after each downsampling
        block: nn.Module = _Block(width[-2], width[-1], None, innermost=True)
        for level in range(c.depth - 2, 0, -1):  # from the innermost outwards
            inner_from_center = c.depth - 2 - level  # 0 for the block just outside the innermost
            block = _Block(width[level - 1], width[level], block, dropout=inner_from_center < c.n_dropout)
        self.body = _Block(3, width[0], block, outermost=True, in_channels=3)
        self.register_buffer("magnitude_scale_px", torch.tensor(float(c.magnitude_scale_px)))
        self.apply(_init_weights)

    @property
    def stride(self) -> int:
        """H and W must be multiples of this."""
        return int(2 ** self.config.depth)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Model-space flow image `(N, 3, H, W)` for RGB `(N, 3, H, W)` in [-1, 1]."""
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) RGB, got {tuple(rgb.shape)}")
        if rgb.shape[-2] % self.stride or rgb.shape[-1] % self.stride:
            raise ValueError(f"H and W must be multiples of {self.stride} (2**depth), got {tuple(rgb.shape[-2:])}")
        raw = self.body(rgb)
        activations: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "softplus": F.softplus,
                                                                           "abs": torch.abs}
        activation = activations[self.config.magnitude_activation]
        magnitude = activation(raw[:, 2:])
        return torch.cat([torch.tanh(raw[:, :2]), magnitude], 1)

    def to_flow_image(self, model_space: torch.Tensor) -> torch.Tensor:
        """Model space → flow image `(N, 3, H, W)` (sin θ, cos θ, M in px)."""
        scale = self.get_buffer("magnitude_scale_px")
        return torch.cat([model_space[:, :2], model_space[:, 2:] * scale], 1)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def flow_image_to_model_space(flow_image: torch.Tensor, magnitude_scale_px: float | torch.Tensor) -> torch.Tensor:
    """Flow image `(N, 3, H, W)` (sin, cos, M px) → model space (sin, cos, M / scale)."""
    return torch.cat([flow_image[:, :2], flow_image[:, 2:] / magnitude_scale_px], 1)
