"""Configuration of the whole pipeline: one YAML file with a section per stage.

```yaml
pipeline: {stages: [ingest, extract, train, evaluate, recognize, potential], experiment: im2flow-pipeline}
ingest: {layout: auto}
extract: {algorithm: tvl1, short_side: 256}
train: {epochs: 30, loss: {content_weight: 1.0}}
evaluate: {frames_per_video: 5}
recognize: {seeds: [0, 1, 2]}
```

Precedence, lowest first: defaults < preset (`pipeline.preset`, e.g. `demo`) < YAML < environment
(`IM2FLOW_<SECTION>_<FIELD>`, nested fields joined by `__`) < command-line flags and `--set
section.field=value`. Every error names the section and field.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import SettingsConfigDict

from im2flow_tasks.config import (
    ComputeConfig,
    ConfigError,
    ConfigFileData,
    EvalConfig,
    ExtractConfig,
    IngestConfig,
    RecognizeConfig,
    TrainConfig,
    load_config,
    read_config_file,
)
from im2flow_tasks.presets import PRESETS

STAGES = ("ingest", "extract", "train", "evaluate", "recognize", "potential")
"""The pipeline's stages in the order they run (potential uses the `evaluate` section)."""

SECTIONS = {"pipeline": None, "ingest": IngestConfig, "extract": ExtractConfig, "train": TrainConfig,
            "evaluate": EvalConfig, "recognize": RecognizeConfig}


def parse_splits(text: str) -> tuple[int, ...]:
    """Official splits as given on the command line: "2" → (2,), "1,2,3" → (1, 2, 3), "all" → (1, 2, 3).

    ValueError for anything but official splits 1-3.
    """
    if text.strip().lower() == "all":
        return (1, 2, 3)
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"splits are 1, 2, 3, a list like 1,2,3, or all; got {text!r}") from None
    if not values or any(k not in (1, 2, 3) for k in values):
        raise ValueError(f"splits are official splits 1-3, got {text!r}")
    return values


class PipelineConfig(ComputeConfig):
    """`im2flow pipeline`: which stages run, where, and how the run is tracked."""

    model_config = SettingsConfigDict(env_prefix="IM2FLOW_PIPELINE_")
    preset: Literal["paper", "demo"] = Field("paper", description="demo: small models for CPUs")
    stages: tuple[str, ...] = Field(STAGES, min_length=1, description="stages to run, in pipeline order")
    mlflow_tracking_uri: str | None = Field(None, description="default: MLFLOW_TRACKING_URI, else W/mlflow.db")
    experiment: str = Field("im2flow-pipeline", description="MLflow experiment of the pipeline's runs")
    run_name: str | None = Field(None, description="MLflow parent run name (default: pipeline-<dataset>)")
    refresh: bool = Field(False, description="run every stage even if its inputs did not change")
    splits: tuple[int, ...] = Field((), description="official splits (UCF-101 / HMDB-51) to train, evaluate and "
                                    "recognize on, each from the one flow store, e.g. 1,2,3 or all; reported per "
                                    "split and as mean ± std. Empty: the split chosen at ingest")

    @field_validator("splits", mode="before")
    @classmethod
    def _parse_splits(cls, value: Any) -> Any:
        return parse_splits(value) if isinstance(value, str) else value

    @field_validator("splits")
    @classmethod
    def _official_splits(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(k not in (1, 2, 3) for k in value) or len(set(value)) != len(value):
            raise ValueError(f"splits must be distinct official splits 1-3, got {list(value)}")
        return tuple(sorted(value))

    @field_validator("stages", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(s.strip() for s in value.split(",") if s.strip()) if isinstance(value, str) else value

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
        return tuple(s for s in STAGES if s in value)  # pipeline order, whatever the order given


class PipelineConfigs(BaseModel):
    """Every stage's configuration for one pipeline run."""

    model_config = ConfigDict(frozen=True)
    pipeline: PipelineConfig
    ingest: IngestConfig
    extract: ExtractConfig
    train: TrainConfig
    evaluate: EvalConfig
    recognize: RecognizeConfig

    def as_params(self) -> dict[str, Any]:
        """All fields as nested plain data (section → field → value), e.g. for MLflow params."""
        return {name: section_params(getattr(self, name)) for name in SECTIONS}

    def with_tracking(self, uri: str) -> PipelineConfigs:
        """Every section tracking in `uri`: the pipeline resolves its tracking store once and hands it down."""
        return self.model_copy(update={
            name: getattr(self, name).model_copy(update={"mlflow_tracking_uri": uri}) for name in SECTIONS
            if "mlflow_tracking_uri" in type(getattr(self, name)).model_fields})


def section_params(section: Any) -> dict[str, Any]:
    """One section's fields as plain data for MLflow params (`tracked_params()` where a section has one:
    extraction leaves out the algorithms it does not run)."""
    tracked = getattr(section, "tracked_params", None)
    return tracked() if tracked is not None else section.model_dump(mode="json")


def set_field(overrides: dict[str, dict[str, Any]], dotted: str, value: Any) -> None:
    """Set `section.field[.subfield…]` to `value` in `overrides` (section → nested fields), in place."""
    section, *fields = dotted.split(".")
    node = overrides.setdefault(section, {})
    for name in fields[:-1]:
        node = node.setdefault(name, {})
    node[fields[-1]] = value


def parse_sets(pairs: list[str] | None) -> dict[str, dict[str, Any]]:
    """`["train.loss.content_weight=0", ...]` → `{"train": {"loss": {"content_weight": 0}}}`.

    Values are read as YAML scalars/lists (`3` is an int, `[0,1]` a list, `null` None).
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs or []:
        if "=" not in pair or "." not in pair.split("=", 1)[0]:
            raise ConfigError(f"--set needs SECTION.FIELD=VALUE, got {pair!r}")
        path, raw = pair.split("=", 1)
        section = path.strip().split(".")[0]
        if section not in SECTIONS:
            raise ConfigError(f"--set {pair!r}: unknown section {section!r}; choose from {list(SECTIONS)}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        set_field(out, path.strip(), value)
    return out


def _read_sections(yaml_path: str | None) -> ConfigFileData | None:
    """The pipeline's config file, read once; ConfigError for a top-level key that is not a section."""
    if yaml_path is None:
        return None
    source = read_config_file(yaml_path)
    unknown = sorted(set(source.data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"config file {yaml_path}: unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    return source


def load_pipeline_configs(yaml_path: str | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                          preset: str | None = None) -> PipelineConfigs:
    """Every section from defaults < preset < YAML < environment < `overrides` (flags and --set).

    `preset` (a flag) wins over `pipeline.preset` from YAML or the environment. The pipeline's
    compute and tracking settings are handed to the stages (one Dask cluster, one MLflow store, one
    experiment for the whole run). Raises ConfigError naming the section and field.
    """
    source = _read_sections(yaml_path)  # read once; unknown sections fail before anything else
    overrides = overrides or {}
    pipe_overrides = dict(overrides.get("pipeline", {}))
    if preset is not None:
        pipe_overrides["preset"] = preset
    pipeline = load_config(PipelineConfig, source, "pipeline", **pipe_overrides)
    base = PRESETS[pipeline.preset]
    shared_compute = {"workers": pipeline.workers, "dask_address": pipeline.dask_address}
    tracking = {"mlflow_tracking_uri": pipeline.mlflow_tracking_uri, "experiment": pipeline.experiment}
    sections: dict[str, Any] = {"pipeline": pipeline}
    for name, cls in SECTIONS.items():
        if cls is None:
            continue
        extra = dict(overrides.get(name, {}))
        if issubclass(cls, ComputeConfig):
            extra.update({k: v for k, v in shared_compute.items() if v is not None})
        if "experiment" in cls.model_fields:
            extra.update({k: v for k, v in tracking.items() if v is not None})
        sections[name] = load_config(cls, source, name, base=base.get(name), **extra)
    return PipelineConfigs(**sections)
