"""Typed configuration of the interop stages: `im2flow export` and `im2flow import-flow` (rawframes).

Same rules as im2flow_tasks.config: defaults < YAML (section `export` / `import`) < environment
(`IM2FLOW_EXPORT_*`, `IM2FLOW_IMPORT_*`) < flags.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from im2flow_core.rawframe_flow import DEFAULT_BOUND_PX
from im2flow_tasks.config import ComputeConfig


class ExportConfig(ComputeConfig):
    """`im2flow export`: a flow store (or G's hallucinated flow) as mmaction2/TSN rawframes."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_EXPORT_")
    format: Literal["rawframes"] = "rawframes"
    bound_px: float = Field(DEFAULT_BOUND_PX, gt=0, description="flow ±b px maps to 0…255; beyond is clipped")
    jpeg_quality: int = Field(95, ge=1, le=100, description="JPEG quality of RGB and flow images")
    store_fingerprint: str | None = Field(None, description="which flow store, if the work dir has several")
    split_index: int = Field(1, ge=1, description="k in the annotation lists' names (<name>_train_split_<k>_…)")
    list_name: str = Field("im2flow", pattern=r"^[A-Za-z0-9_.-]+$", description="<name> of the annotation lists")
    hallucinated: bool = Field(False, description="export G's predicted flow instead of the store's true flow")
    model: str | None = Field(None, description="hallucinated: G as an exported .pt or MLflow model URI")
    split: str | None = Field(None, description="hallucinated: only this split's videos (default: all)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="hallucinated: where G runs")
    batch_size: int = Field(32, ge=1, description="hallucinated: frames G predicts at once")
    frames_per_task: int = Field(2000, ge=1, description="frames one Prefect task exports (whole videos; fewer on "
                                                         "small jobs so at least 16 tasks share the work)")
    retries: int = Field(2, ge=0, description="retries of a task that crashed (not of bad videos)")
    overwrite: bool = Field(False, description="export into a non-empty folder that holds no export of ours, "
                                               "replacing folders of the same names")
    mlflow_tracking_uri: str | None = Field(None, description="hallucinated: where an MLflow model URI resolves")


class ImportConfig(ComputeConfig):
    """`im2flow import-flow`: precomputed rawframes (RGB + flow_x/flow_y JPEGs) into a flow store."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_IMPORT_")
    format: Literal["rawframes"] = "rawframes"
    bound_px: float = Field(DEFAULT_BOUND_PX, gt=0, description="the bound the flow JPEGs were written with")
    layout: Literal["auto", "mmaction", "ucf101", "hmdb51", "folders"] = Field(
        "auto", description="where labels and splits come from (see docs/interop.md)")
    split_index: int = Field(1, ge=1, le=3, description="which official / annotation-list split")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="folders layout: test share (stratified by group)")
    seed: int = 0
    check_alignment: bool = Field(True, description="check by content that flow k belongs to frame k")
    rgb_quality: int = Field(95, ge=1, le=100, description="JPEG quality of the store's RGB frames")
    shard_frames: int = Field(32, ge=1)
    frames_per_task: int = Field(2000, ge=1, description="frames one Prefect task imports (whole videos)")
    retries: int = Field(2, ge=0)
