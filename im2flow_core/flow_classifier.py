"""φ: a ResNet-style action classifier on flow images (plain torch; torchvision is not used).

Input: `(N, 3, H, W)` flow images in model space (sin θ, cos θ, M / scale). It is trained for
action recognition on true flow, then frozen: its intermediate features φ_j give Im2Flow's motion
content loss, and the same network is the motion stream of two-stream recognition.
Stages are named `stem`, `layer1` … `layer4` (ResNet-18 layout by default, He et al. 2016);
`features(x, names)` returns the named stages' outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from im2flow_core.model_configs import STAGES


class ClassifierConfig(BaseModel):
    """Architecture of φ (and of the appearance stream)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    num_classes: int = Field(..., ge=2)
    in_channels: int = Field(3, ge=1)
    base_width: int = Field(64, ge=4, description="channels of layer1; doubled in each later stage")
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
    stem: Literal["imagenet", "small"] = Field(
        "imagenet", description="imagenet: 7×7 stride 2 + max-pool (224 px inputs); small: 3×3 stride 1 (≤ 96 px)")
    dropout: float = Field(0.0, ge=0, lt=1)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class FlowClassifier(nn.Module):
    """ResNet classifier: `(N, C, H, W)` → logits `(N, num_classes)`."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        w = c.base_width
        if c.stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(c.in_channels, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = nn.Sequential(nn.Conv2d(c.in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w),
                                      nn.ReLU(inplace=True))
        widths = [w, w * 2, w * 4, w * 8]
        in_channels = w
        for index, (width, n_blocks) in enumerate(zip(widths, c.blocks)):
            stride = 1 if index == 0 else 2
            layers = [BasicBlock(in_channels if b == 0 else width, width,
                                 stride if b == 0 else 1) for b in range(n_blocks)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layers))
            in_channels = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(c.dropout)
        self.fc = nn.Linear(in_channels, c.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor, names: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
        """Outputs of the named stages (of STAGES), computing only as deep as needed."""
        unknown = set(names) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown feature stages {sorted(unknown)}; choose from {STAGES}")
        out: dict[str, torch.Tensor] = {}
        deepest = max(STAGES.index(n) for n in names)
        for stage in STAGES[: deepest + 1]:
            x = getattr(self, stage)(x)
            if stage in names:
                out[stage] = x
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled last-stage features `(N, 8·base_width)`."""
        for stage in STAGES:
            x = getattr(self, stage)(x)
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits `(N, num_classes)`."""
        return self.fc(self.dropout(self.embed(x)))


def load_state_dict_file(module: nn.Module, path: str | Path) -> nn.Module:
    """Load user-supplied weights from a local file into `module` (tensors only: weights_only=True).

    Accepts a bare state dict or a checkpoint dict with a "state_dict" entry. Raises ValueError
    naming the file when keys or shapes do not match.
    """
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'state_dict'), got {type(blob).__name__}")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit this architecture: {exc}") from exc
    return module
