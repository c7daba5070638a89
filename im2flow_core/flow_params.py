"""The optical-flow algorithms and their parameters: typed models whose defaults are OpenCV's own.

Shared by the estimators (`im2flow_core.optical_flow`) and the PyTorch TV-L1 (`im2flow_core.tvl1_torch`),
which import this module and not each other.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FlowAlgorithm(str, Enum):
    """Optical-flow algorithms the extraction stage can run."""

    tvl1 = "tvl1"
    tvl1_torch = "tvl1-torch"
    dis = "dis"
    farneback = "farneback"


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TVL1Params(_Params):
    """cv2.optflow.DualTVL1OpticalFlow parameters (Zach, Pock & Bischof 2007); OpenCV's defaults."""

    tau: float = Field(0.25, gt=0, description="time step of the numerical scheme")
    lambda_: float = Field(0.15, gt=0, alias="lambda", description="data-term weight (smaller = smoother)")
    theta: float = Field(0.3, gt=0, description="tightness of the coupling")
    nscales: int = Field(5, ge=1, description="pyramid levels")
    warps: int = Field(5, ge=1, description="warpings per scale")
    epsilon: float = Field(0.01, gt=0, description="stopping threshold")
    inner_iterations: int = Field(30, ge=1)
    outer_iterations: int = Field(10, ge=1)
    scale_step: float = Field(0.8, gt=0, lt=1, description="pyramid downscale factor")
    gamma: float = Field(0.0, ge=0, description="illumination-variation weight")
    median_filtering: int = Field(5, ge=1, description="median filter size (1 disables)")


class DISParams(_Params):
    """cv2.DISOpticalFlow (Kroeger et al. 2016): a preset, optionally with overrides of its fields."""

    preset: Literal["ultrafast", "fast", "medium"] = "medium"
    finest_scale: int | None = Field(None, ge=0)
    patch_size: int | None = Field(None, ge=1)
    patch_stride: int | None = Field(None, ge=1)
    gradient_descent_iterations: int | None = Field(None, ge=1)
    variational_refinement_iterations: int | None = Field(None, ge=0)
    use_spatial_propagation: bool | None = None


class FarnebackParams(_Params):
    """cv2.calcOpticalFlowFarneback arguments (the function has no defaults; these are the common ones)."""

    pyr_scale: float = Field(0.5, gt=0, lt=1)
    levels: int = Field(3, ge=1)
    winsize: int = Field(15, ge=3)
    iterations: int = Field(3, ge=1)
    poly_n: int = Field(5, ge=3)
    poly_sigma: float = Field(1.2, gt=0)
