"""Typed configuration of each stage: defaults < YAML file < environment < command-line flags.

Every stage has one frozen pydantic model. Environment variables are `IM2FLOW_<STAGE>_<FIELD>`,
nested fields joined by `__` (e.g. `IM2FLOW_EXTRACT_TVL1__WARPS=3`). Unknown or invalid fields
fail with a message that names the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from im2flow_core.flow_encoding import CHANNEL_NAMES, ZERO_MAGNITUDE_PX
from im2flow_core.model_configs import GeneratorConfig, LossConfig
from im2flow_core.optical_flow import DISParams, FarnebackParams, FlowAlgorithm, TVL1Params, implementation_name
from im2flow_storage.datasets import DatasetLayout
from im2flow_storage.flow_compression import flow_compression


class ConfigError(Exception):
    """A configuration value is invalid; the message names the field."""


SECTION_NAMES = ("pipeline", "ingest", "extract", "train", "evaluate", "recognize", "export", "import")
"""Top-level sections of a config file (`potential` reads `evaluate`); see im2flow_tasks.pipeline_config."""


def _section_of(loaded: dict[str, Any], section: str, fields: set[str], yaml_path: str | Path) -> dict[str, Any]:
    """The mapping of `section` in a config file: its section, or the whole file if it is flat.

    A file with sections may hold every section (a pipeline file serves every stage command), but
    nothing else at the top; a flat file may hold only this stage's fields. Anything else is an
    error naming the keys, never silently ignored.
    """
    keys = set(loaded)
    sections = keys & set(SECTION_NAMES)
    valid = ", ".join(SECTION_NAMES)
    if sections:
        strays = sorted(keys - sections)
        if strays:
            raise ConfigError(f"config file {yaml_path}: unknown top-level key(s) {strays}; a file with sections "
                              f"holds only sections ({valid}); this command reads {section!r}")
        chosen = loaded.get(section) or {}
        if not isinstance(chosen, dict):
            raise ConfigError(f"config file {yaml_path}: section {section!r} must be a mapping of fields")
        return chosen
    unknown = sorted(keys - fields)
    if unknown:
        raise ConfigError(f"config file {yaml_path}: unknown top-level key(s) {unknown}: neither fields of the "
                          f"{section!r} stage nor sections ({valid}); put this stage's fields under "
                          f"'{section}:' or at the top of the file")
    return loaded


class _StageConfig(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_nested_delimiter="__",
                                      populate_by_name=True)


class ComputeConfig(_StageConfig):
    """Where the parallel work runs."""

    workers: int | None = Field(None, ge=1, description="local Dask workers (default: one per core)")
    dask_address: str | None = Field(None, description="scheduler of an existing Dask cluster, e.g. tcp://host:8786")


class IngestConfig(ComputeConfig):
    """`im2flow ingest`: find and probe the videos of a dataset."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_INGEST_")
    layout: DatasetLayout = DatasetLayout.auto
    split_index: int = Field(1, ge=1, le=3, description="official split of UCF-101 / HMDB-51")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="test share when there are no split files")
    seed: int = Field(0, description="seed of the split when there are no split files")
    min_frames: int = Field(2, ge=2, description="fewer decodable frames mark a video too_short")
    max_frame_pixels: int = Field(50_000_000, ge=1, description="frames of more pixels (W×H) mark a video too_large "
                                  "(checked from the header before decoding)")
    max_frames: int = Field(1_000_000, ge=2,
                            description="more decodable frames mark a video too_long (≈ 9 h at 30 fps)")
    allow_shrink: bool = Field(False, description="let a re-ingest drop more than shrink_limit of the manifest's "
                                                  "ok videos (they were deleted, moved or are not mounted)")
    shrink_limit: float = Field(0.05, ge=0, le=1, description="share of the manifest's ok videos a re-ingest may drop "
                                                              "without allow_shrink")
    megabytes_per_task: float = Field(32.0, gt=0, description="video bytes one Prefect task probes (whole files; "
                                      "less on small jobs so every worker gets some)")


class ExtractConfig(ComputeConfig):
    """`im2flow extract`: optical flow and RGB frames into a flow store."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_EXTRACT_")
    algorithm: FlowAlgorithm = FlowAlgorithm.tvl1
    tvl1: TVL1Params = TVL1Params()
    dis: DISParams = DISParams()
    farneback: FarnebackParams = FarnebackParams()
    short_side: int | None = Field(256, ge=8, description="resize so the shorter side has this many px")
    size: tuple[int, int] | None = Field(None, description="resize to exactly W×H px (overrides short_side)")
    step: int = Field(1, ge=1, description="K: flow t goes from sampled frame t to t + K")
    frame_stride: int = Field(1, ge=1, description="keep every S-th decoded frame")
    max_frames: int | None = Field(None, ge=2, description="keep at most this many sampled frames per video")
    flow_codec: Literal["bounded", "quantized"] = Field("bounded", description="see docs/storage.md")
    flow_max_error_px: float = Field(0.085, description="bounded: largest end-point error of stored flow")
    flow_bound_px: float = Field(128.0, description="bounded: largest |u|, |v| stored unclipped")
    flow_distance: float = Field(0.02, description="bounded: JPEG-XL distance of the lossy layer")
    flow_step_px: float = Field(1 / 18, description="quantized: rounding step in px")
    flow_effort: int = Field(3, description="JPEG-XL effort (1-10) of the flow codec (7: ~5 % smaller, 7× slower)")
    rgb_format: Literal["jpeg", "png"] = "jpeg"
    rgb_quality: int = Field(95, ge=1, le=100)
    shard_frames: int = Field(32, ge=1, description="frames per shard file")
    retries: int = Field(2, ge=0, description="retries of a task that crashed (not of bad videos)")
    seconds_per_task: float = Field(30.0, gt=0, description="estimated core-seconds of work one Prefect task "
                                    "carries (whole videos; less on small jobs so every worker gets some)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="tvl1-torch: where to compute")
    batch_size: int = Field(16, ge=1, description="tvl1-torch: frame pairs computed together")
    compile: bool = Field(True, description="tvl1-torch: fuse each iteration with torch.compile (built once per "
                                            "machine; uncompiled if that fails)")

    @field_validator("size", mode="before")
    @classmethod
    def _parse_size(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                width, height = value.lower().split("x")
                return int(width), int(height)
            except ValueError:
                raise ValueError(f"size must look like 320x240, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _check_size_and_codec(self) -> ExtractConfig:
        if self.size is not None and min(self.size) < 8:
            raise ValueError(f"size must be at least 8x8, got {self.size}")
        flow_compression(self.flow_codec_config())  # raises ValueError naming the bad parameter
        return self

    def flow_codec_config(self) -> dict[str, Any]:
        """Configuration of the flow store's flow compression (im2flow_storage.flow_compression)."""
        if self.flow_codec == "quantized":
            return {"mode": "quantized", "step_px": self.flow_step_px, "effort": self.flow_effort}
        return {"mode": "bounded", "max_error_px": self.flow_max_error_px, "bound_px": self.flow_bound_px,
                "distance": self.flow_distance, "effort": self.flow_effort}

    @property
    def params_field(self) -> str:
        """The field holding the chosen algorithm's parameters (tvl1-torch shares TV-L1's `tvl1`)."""
        return "tvl1" if self.algorithm is FlowAlgorithm.tvl1_torch else self.algorithm.value

    def algorithm_params(self) -> TVL1Params | DISParams | FarnebackParams:
        """The parameter model of the chosen algorithm."""
        return getattr(self, self.params_field)

    def compute_options(self) -> dict[str, Any]:
        """How (not what) a video is computed: never part of the store's fingerprint."""
        return {"device": self.device, "batch_size": self.batch_size, "compile": self.compile}

    def tracked_params(self) -> dict[str, Any]:
        """The fields as plain data for MLflow, without the parameters of the algorithms not chosen
        (a TV-L1 run logs `extract.tvl1.*`, not `extract.dis.*` or `extract.farneback.*`)."""
        unused = {"tvl1", "dis", "farneback"} - {self.params_field}
        return self.model_dump(mode="json", exclude=unused)

    def store_config(self) -> dict[str, Any]:
        """What determines a flow store's content; its fingerprint is taken over this dict."""
        return {
            "algorithm": self.algorithm.value,
            "implementation": implementation_name(self.algorithm),
            "params": self.algorithm_params().model_dump(by_alias=True),
            "resize": {"short_side": None if self.size else self.short_side,
                       "size": list(self.size) if self.size else None},
            "step": self.step, "frame_stride": self.frame_stride, "max_frames": self.max_frames,
            "encoding": {
                "channels": list(CHANNEL_NAMES),
                "zero_magnitude": f"F1 = F2 = 0 where M < {ZERO_MAGNITUDE_PX} px",
                "flow_storage": "(u, v) compressed by storage.flow_compression; M recomputed on read",
                "flow_codec": self.flow_codec_config(),
                "flow_bound_px": flow_compression(self.flow_codec_config()).bound_px,
                "rgb_format": self.rgb_format, "rgb_quality": self.rgb_quality,
            },
        }


Config = TypeVar("Config", bound=_StageConfig)


def _describe(error: ValidationError, source: str, section: str | None = None) -> str:
    lines = [f"invalid configuration ({source}):"]
    for item in error.errors():
        field = ".".join([*([section] if section else []), *(str(p) for p in item["loc"])]) or "(root)"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)


def _explicit_fields(model: BaseModel) -> dict[str, Any]:
    """The fields set explicitly on `model` (recursively into nested models), as plain data."""
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        value = getattr(model, name)
        out[name] = _explicit_fields(value) if isinstance(value, BaseModel) else value
    return out


def _deep_update(target: dict[str, Any], source: dict[str, Any]) -> None:
    """Merge `source` into `target`; nested mappings merge field by field (env `A__B` keeps YAML's `A.C`)."""
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


@dataclass(frozen=True)
class ConfigFileData:
    """A config file as read once (`read_config_file`): its path, for messages, and its top-level mapping."""

    path: str
    data: dict[str, Any]


def read_config_file(yaml_path: str | Path) -> ConfigFileData:
    """The one reader of config files: YAML holding a mapping. ConfigError naming the file otherwise."""
    try:
        loaded = yaml.safe_load(Path(yaml_path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {yaml_path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {yaml_path} must hold a mapping of fields")
    return ConfigFileData(str(yaml_path), loaded)


def load_config(cls: type[Config], yaml_path: str | Path | ConfigFileData | None = None, section: str | None = None,
                base: dict[str, Any] | None = None, **overrides: Any) -> Config:
    """Build `cls` from defaults < `base` < YAML (optionally its `section`) < environment < `overrides`.

    `yaml_path`: a config file, or one already read (`read_config_file`, so a file serving every section is
    parsed once). `base` is a preset's values (the demo's small models). Overrides equal to None are ignored
    (flags the user did not give). Raises ConfigError naming the bad field (with its section).
    """
    data: dict[str, Any] = copy.deepcopy(base) if base else {}
    source = yaml_path if isinstance(yaml_path, ConfigFileData) or yaml_path is None else read_config_file(yaml_path)
    if source is not None:
        loaded = copy.deepcopy(source.data)
        if section is not None:
            loaded = _section_of(loaded, section, set(cls.model_fields), source.path)
        _deep_update(data, loaded)
    try:
        from_env = cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        raise ConfigError(_describe(exc, f"environment variables {prefix}*", section)) from None
    _deep_update(data, _explicit_fields(from_env))
    _deep_update(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(yaml_path) if yaml_path else "arguments", section)) from None


class ClassifierTrainConfig(_StageConfig):
    """A ResNet classifier (φ or a recognition stream): architecture and optimisation."""

    base_width: int = Field(64, ge=4)
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
    stem: Literal["imagenet", "small"] = "imagenet"
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(5, ge=1)
    hflip: bool = Field(True, description="random left-right flips in training; off where classes are each other's "
                                          "mirror images (left vs right, clockwise vs anticlockwise)")


class PhiTrainConfig(ClassifierTrainConfig):
    """φ, the flow-stream action classifier: architecture and optimisation."""

    weights: Path | None = Field(None, description="local file with φ weights: skip training φ")


class TrainConfig(_StageConfig):
    """`im2flow train`: φ, then G with L = w_pixel · L_pixel + λ · L_content."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_TRAIN_")
    store_fingerprint: str | None = Field(None, description="which flow store, if the work dir has several")
    split_index: int | None = Field(None, ge=1, le=3, description="official split of UCF-101 / HMDB-51 to use "
                                    "(labels and splits from the manifest); None: the split chosen at ingest")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    generator: GeneratorConfig = GeneratorConfig()
    loss: LossConfig = LossConfig()
    phi: PhiTrainConfig = PhiTrainConfig()
    magnitude_scale_px: float | None = Field(None, gt=0, description="default: 99th percentile of training M")
    load_size: int | None = Field(None, description="short side before the random crop (default input × 286/256)")
    frames_per_video: int | None = Field(None, ge=1, description="at most this many frames of each video")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="share of training groups held out for validation")
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    lr_decay_start: int | None = Field(None, ge=0, description="epoch from which the lr decays linearly to 0")
    patience: int = Field(5, ge=1, description="epochs without a better validation loss before stopping")
    num_workers: int = Field(1, ge=0, description="DataLoader worker processes")
    potential_head_frames: int = Field(4096, ge=4, description="train-split frames the motion-potential head is "
                                                               "fitted on")
    mlflow_tracking_uri: str | None = Field(None, description="default: MLFLOW_TRACKING_URI, else W/mlflow.db")
    experiment: str = "im2flow-train"
    registered_model: str = "im2flow-generator"
    model_alias: str = "champion"

    @property
    def crop_size(self) -> int:
        """Side of the square crops G trains on (= generator.input_size)."""
        return self.generator.input_size

    @property
    def resolved_load_size(self) -> int:
        """Short side before cropping: `load_size`, or the released code's 286/256 ratio."""
        return self.load_size or int(round(self.crop_size * 286 / 256))

    def content_dict(self) -> dict[str, Any]:
        """The fields that determine the trained models (not where or how fast they run)."""
        skip = {"device", "num_workers", "mlflow_tracking_uri", "experiment", "registered_model", "model_alias",
                "workers", "dask_address"}
        return self.model_dump(mode="json", exclude=skip)


class EvalConfig(_StageConfig):
    """`im2flow evaluate` and `im2flow potential`: metrics, masks and baselines."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_EVAL_")
    model: str | None = Field(None, description="exported .pt or MLflow model URI (default: the registry alias)")
    store_fingerprint: str | None = None
    split_index: int | None = Field(None, ge=1, le=3, description="official split of UCF-101 / HMDB-51 to use "
                                    "(labels and splits from the manifest); None: the split chosen at ingest")
    split: str = Field("test", description="split to evaluate")
    frames_per_video: int | None = Field(5, ge=1, description="evenly spaced frames per video (None: all)")
    baseline_frames_per_video: int = Field(10, ge=1, description="training frames per video for NN and mean")
    nn_descriptor_size: int = Field(16, ge=4, description="side of the NN appearance descriptor")
    canny_low: float = 100.0
    canny_high: float = 200.0
    fg_threshold_px: float = Field(0.5, ge=0, description="true |flow| above this is foreground")
    fg_kernel: int = Field(3, ge=1, description="morphological clean-up of the foreground mask")
    fg_mask_dir: Path | None = Field(None, description="user masks: <dir>/<video_id>/<t:06d>.png, non-zero = fg")
    min_norm_px: float = Field(1e-3, gt=0, description="shorter vectors have no direction (DS = OS = 0)")
    gallery_k: int = Field(6, ge=1, description="top and bottom images in galleries")
    batch_size: int = Field(32, ge=1, description="images G predicts at once")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mlflow_tracking_uri: str | None = None
    experiment: str = "im2flow-eval"


class StreamConfig(ClassifierTrainConfig):
    """Architecture and optimisation of a recognition stream's classifier (ResNet, plain torch)."""

    dropout: float = Field(0.3, ge=0, lt=1)


class RecognizeConfig(_StageConfig):
    """`im2flow recognize`: appearance and motion streams, late fusion, oracle motion."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_RECOGNIZE_")
    model: str | None = Field(None, description="G: exported .pt or MLflow model URI (default: the registry alias)")
    store_fingerprint: str | None = None
    split_index: int | None = Field(None, ge=1, le=3, description="official split of UCF-101 / HMDB-51 to use "
                                    "(labels and splits from the manifest); None: the split chosen at ingest")
    images_csv: Path | None = Field(None, description="still images instead of video frames: CSV path,label[,split]")
    split: str = Field("test", description="split to report")
    seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1, description="each seed trains every stream once")
    frames_per_video: int | None = Field(None, ge=1, description="training frames per video (None: all)")
    eval_frames_per_video: int | None = Field(5, ge=1, description="test frames per video (None: all)")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="training groups held out to select the fusion weight")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="images: test share when the CSV has no split")
    appearance: StreamConfig = StreamConfig()
    motion: StreamConfig = StreamConfig()
    motion_init: Literal["fresh", "phi"] = Field("fresh", description="phi: start the motion stream from φ")
    phi_weights: Path | None = Field(None, description="φ weights for motion_init=phi (architecture = motion)")
    oracle: bool = Field(True, description="also train the motion stream on true TV-L1 flow (video frames only)")
    fusion_weight: float | None = Field(None, ge=0, le=1, description="motion weight; None: chosen on validation")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    mlflow_tracking_uri: str | None = None
    experiment: str = "im2flow-recognize"

    @model_validator(mode="after")
    def _phi_needs_weights(self) -> RecognizeConfig:
        if self.motion_init == "phi" and self.phi_weights is None:
            raise ValueError("motion_init=phi needs phi_weights (a φ state-dict file)")
        return self

    def content_dict(self) -> dict[str, Any]:
        """The fields that determine the results (not where or how fast they run)."""
        return self.model_dump(mode="json", exclude={"device", "num_workers", "mlflow_tracking_uri", "experiment"})
