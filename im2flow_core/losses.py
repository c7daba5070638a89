"""Im2Flow's loss: L = w_pixel · L_pixel + λ · L_content (Gao, Xiong & Grauman 2018, Eq. 2) [+ w_pot · L_potential].

All tensors are model-space flow images `(N, 3, H, W)`: (sin θ, cos θ, M / scale).
- L_pixel: mean squared error per element, i.e. over N·3·H·W (the paper's L2; exactly the released
  code's `nn.MSECriterion`, which averages over every element). With `magnitude_weighting` (the released
  code's choice, our default) the sin/cos terms are weighted per pixel by the true normalised
  magnitude, clipped to [0, 1]: a direction is only supervised where something moves, since
  TV-L1's angle of a still pixel is noise.
- L_content: over the chosen stages j of the frozen motion network φ, the distance between
  φ_j(y) and φ_j(ŷ) normalised by D_j·H_j·W_j: "l2" = mean squared difference (the paper; as in
  Johnson et al.'s perceptual loss), "l1" = mean absolute difference (the released code). Averaged
  over j. λ = 0 gives the pixel-only ablation (φ is then not run).
- L_potential (ours, off by default): |mean M̂ − mean M| per image, so the image mean of the predicted
  magnitude — the motion potential — is calibrated (see docs/evaluation.md).
Defaults follow the released code (w_pixel 50, λ 1, L1 on layer2) because it produced the
paper's numbers; the paper's L2 is one setting away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from im2flow_core.flow_classifier import FlowClassifier
from im2flow_core.model_configs import STAGES, LossConfig  # noqa: F401 - re-exported


@dataclass(frozen=True)
class LossTerms:
    """The total loss and its parts (tensors; call .item() to log)."""

    total: torch.Tensor
    pixel: torch.Tensor
    content: torch.Tensor
    potential: torch.Tensor


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, magnitude_weighting: bool = True,
               magnitude_norm: Literal["l2", "l1"] = "l2") -> torch.Tensor:
    """Squared error per element of `(N, 3, H, W)` flow images, averaged over all N·3·H·W elements.

    The released code's `MSECriterion` (size-averaged): a per-element mean, not a per-pixel sum of
    the three channels, so its weight 50 means the same here. sin/cos are weighted by the true
    magnitude if asked; with `magnitude_norm="l1"` the M channel's error is absolute instead of squared.
    """
    direction = (pred[:, :2] - target[:, :2]).pow(2).sum(1)  # (N, H, W)
    if magnitude_weighting:
        direction = direction * target[:, 2].clamp(0, 1)
    error = pred[:, 2] - target[:, 2]
    magnitude = error.abs() if magnitude_norm == "l1" else error.pow(2)
    return (direction + magnitude).mean() / 3  # three channels per pixel: the mean over elements


def potential_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over images of |mean M̂ − mean M| (model-space M, i.e. px / scale) for `(N, 3, H, W)` flow images.

    The image's mean magnitude is the motion potential; a per-pixel L1 on M regresses each pixel's
    median, which is 0 wherever motion is unsure, so its image mean says little about how much moves.
    This term asks the predicted mass of motion to match the true one, wherever G places it.
    """
    return (pred[:, 2].mean((1, 2)) - target[:, 2].mean((1, 2))).abs().mean()


def content_loss(phi: nn.Module, pred: torch.Tensor, target: torch.Tensor, layers: tuple[str, ...],
                 norm: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """Mean over layers j of the D·H·W-normalised distance between φ_j(target) and φ_j(pred)."""
    if not isinstance(phi, FlowClassifier):
        raise TypeError(f"the content loss needs a FlowClassifier φ, got {type(phi).__name__}")
    with torch.no_grad():
        true_features = phi.features(target, layers)
    pred_features = phi.features(pred, layers)
    terms = []
    for name in layers:
        diff = pred_features[name] - true_features[name]
        terms.append(diff.abs().mean() if norm == "l1" else diff.pow(2).mean())
    return torch.stack(terms).mean()


class Im2FlowLoss(nn.Module):
    """L = w_pixel · L_pixel + λ · L_content with a frozen φ (None allowed when λ = 0)."""

    def __init__(self, config: LossConfig, phi: FlowClassifier | None) -> None:
        super().__init__()
        if config.content_weight > 0 and phi is None:
            raise ValueError("a content loss (λ > 0) needs the motion network φ")
        self.config = config
        self.phi = phi
        if phi is not None:
            phi.eval()
            for p in phi.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> Im2FlowLoss:
        super().train(mode)
        if self.phi is not None:
            self.phi.eval()  # φ stays frozen, BatchNorm statistics included
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> LossTerms:
        """Loss terms for predicted and true model-space flow images `(N, 3, H, W)`."""
        c = self.config
        pixel = pixel_loss(pred, target, c.magnitude_weighting, c.magnitude_norm)
        if c.content_weight > 0:
            content = content_loss(self.phi, pred, target, c.content_layers, c.content_norm)  # type: ignore[arg-type]
        else:
            content = torch.zeros((), device=pred.device)
        potential = potential_loss(pred, target) if c.potential_weight > 0 else torch.zeros((), device=pred.device)
        total = c.pixel_weight * pixel + c.content_weight * content + c.potential_weight * potential
        return LossTerms(total, pixel, content, potential)
