"""The configurations of the Im2Flow models, apart from the models: importing them loads no torch.

Commands that only read or check a configuration (the CLI, `im2flow ingest`) import these and
not the modules that build the networks (im2flow_core.unet, im2flow_core.losses,
im2flow_core.flow_classifier), which re-export them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The motion network φ's stages (im2flow_core.flow_classifier), whose features L_content compares.
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class GeneratorConfig(BaseModel):
    """Architecture of G. The paper's: depth 8, ngf 64 at 256 px (54 M parameters)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    depth: int = Field(8, ge=2, le=10, description="number of stride-2 downsamplings")
    ngf: int = Field(64, ge=4, description="filters of the first layer; doubles up to 8×ngf")
    n_dropout: int = Field(3, ge=0, description="innermost decoder blocks with dropout 0.5")
    magnitude_scale_px: float = Field(30.0, gt=0, description="M (px) that maps to F3 = 1 in model space")
    input_size: int = Field(256, ge=16, description="short side (px) of the frames G is trained and run at")
    magnitude_activation: Literal["softplus", "relu", "abs"] = Field(
        "softplus", description="F3 ≥ 0; on the demo relu and abs drove G towards 'nothing moves' (measured)")

    @model_validator(mode="after")
    def _input_fits_depth(self) -> GeneratorConfig:
        if self.input_size % 2**self.depth:
            raise ValueError(f"input_size {self.input_size} must be a multiple of 2**depth = {2**self.depth}")
        return self


class LossConfig(BaseModel):
    """Weights and choices of the Im2Flow loss."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    pixel_weight: float = Field(50.0, ge=0)
    content_weight: float = Field(1.0, ge=0, description="λ; 0 = pixel-only ablation")
    content_norm: Literal["l1", "l2"] = "l1"
    content_layers: tuple[str, ...] = ("layer2",)
    magnitude_weighting: bool = True
    magnitude_norm: Literal["l2", "l1"] = Field(
        "l2", description="penalty on the M channel: l2 (the paper) or l1 (its median, 0 where motion is unsure)")
    potential_weight: float = Field(0.0, ge=0, description="weight of |mean M̂ − mean M| per image (motion "
                                                          "potential); 0 = the paper's loss")

    @field_validator("content_layers")
    @classmethod
    def _known_layers(cls, layers: tuple[str, ...]) -> tuple[str, ...]:
        if not layers or set(layers) - set(STAGES):
            raise ValueError(f"must be a non-empty subset of {STAGES}, got {layers}")
        return layers
