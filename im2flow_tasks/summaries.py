"""What each stage hands back: one frozen, typed summary per stage (and for the pipeline and the demo).

Flows return these, the pipeline records them in its stage cache as plain JSON (`StageSummary.cache_record`,
`summary_from_record`) and reads them back typed, and the CLI prints them: callers read fields, never
string keys. Table rows (`table`, `per_seed`, `ranking`, `agreement`) stay plain rows: they are the CSV
reports' records, written and published as they are.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from im2flow_storage.reports import readable_number


class Failure(BaseModel):
    """One input a stage could not use, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    item: str
    error: str


class StageSummary(BaseModel):
    """A stage's summary; `stage` names the pipeline stage it belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stage: ClassVar[str] = ""
    parent_report_patterns: ClassVar[tuple[str, ...]] = ()
    """File-name patterns of the report files a pipeline's parent MLflow run carries under the stage's label."""
    files: list[str] = []

    def headline_metrics(self) -> dict[str, float]:
        """The metrics this summary gives the pipeline's parent run (finite numbers only)."""
        return {}

    def rows(self) -> list[dict[str, str]]:
        """`item | value` rows for a Prefect table artifact (failures left out: they have their own table)."""
        return summary_rows(self.model_dump(exclude={"failures", "files"}))

    def cache_record(self) -> dict[str, Any]:
        """The summary as plain data for the pipeline's JSON stage cache."""
        return self.model_dump(mode="python")


def summary_rows(summary: dict) -> list[dict[str, str]]:
    """A stage summary as `item | value` rows for a table artifact, numbers to 4 significant digits."""
    def text(value: object) -> str:
        if isinstance(value, float):
            return str(readable_number(value, 4))
        if isinstance(value, dict):
            return ", ".join(f"{k}: {text(v)}" for k, v in value.items())
        return str(value)

    return [{"item": str(k), "value": text(v)} for k, v in summary.items()]


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


class IngestSummary(StageSummary):
    """The manifest written: videos found, probed now, by status and split; the first unusable ones."""

    stage: ClassVar[str] = "ingest"
    manifest: str
    videos: int
    probed: int
    status: dict[str, int]
    ok_by_split: dict[str, int]
    labels: int
    layout: str
    failures: list[Failure] = []

    def headline_metrics(self) -> dict[str, float]:
        return _finite({"ingest_videos": self.videos, "ingest_probed": self.probed})


class ExtractSummary(StageSummary):
    """The flow store filled: videos extracted now, skipped as complete, failed; throughput."""

    stage: ClassVar[str] = "extract"
    store: str
    fingerprint: str
    videos_ok: int
    skipped_complete: int
    extracted: int
    failed: int
    frames: int
    flows: int
    seconds: float
    flows_per_s: float
    report: str | None

    def headline_metrics(self) -> dict[str, float]:
        return _finite({"extract_videos": self.videos_ok, "extract_extracted": self.extracted,
                        "extract_failed": self.failed, "extract_flows_per_s": self.flows_per_s})


class TrainSummary(StageSummary):
    """φ and G trained: the run, the exported G, its registered version and training outcome."""

    stage: ClassVar[str] = "train"
    run_dir: str
    tracking_uri: str
    run_id: str
    phi_val_acc: float | None
    generator_epochs: int
    generator_best_val_loss: float
    stopped_early: bool
    model_uri: str
    model_version: str
    export: str
    magnitude_scale_px: float

    def headline_metrics(self) -> dict[str, float]:
        return _finite({"phi_val_acc": self.phi_val_acc, "generator_best_val_loss": self.generator_best_val_loss,
                        "generator_epochs": self.generator_epochs})


class EvaluationSummary(StageSummary):
    """The paper's table (one row per method, nine columns) on one split, and its report."""

    stage: ClassVar[str] = "evaluate"
    parent_report_patterns: ClassVar[tuple[str, ...]] = ("table.md", "table.csv", "examples.png", "potential.csv")
    table: list[dict[str, Any]]
    markdown: str
    out_dir: str
    run_id: str

    def method_row(self, method: str) -> dict[str, Any]:
        """The table's row of `method` (`Im2Flow`, `Nearest neighbour`, …); empty when it was not scored."""
        return next((r for r in self.table if r["method"] == method), {})

    def headline_metrics(self) -> dict[str, float]:
        return _finite({k: v for k, v in self.method_row("Im2Flow").items() if k != "method"})


class RecognitionSummary(StageSummary):
    """Accuracy per method (mean and std over seeds), per seed, and the report."""

    stage: ClassVar[str] = "recognize"
    parent_report_patterns: ClassVar[tuple[str, ...]] = ("table.md", "table.csv", "confusion_*.png")
    table: list[dict[str, Any]]
    markdown: str
    per_seed: list[dict[str, Any]]
    out_dir: str
    run_id: str
    labels: list[str]
    skipped: list[dict[str, str]]

    def headline_metrics(self) -> dict[str, float]:
        out: dict[str, Any] = {}
        for row in self.table:
            out.update({f"acc_{row['method']}": row["acc"], f"acc_{row['method']}_std": row["acc_std"],
                        f"video_acc_{row['method']}": row["video_acc"]})
        return _finite(out)


AGREEMENT_STATS = ("spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high")


def agreement_metrics(agreement: list[dict[str, Any]]) -> dict[str, float]:
    """`potential_<stat>_<method>` metrics of rank-agreement rows (finite values only)."""
    return _finite({f"potential_{stat}_{r['method'].lower().replace(' ', '_')}": r[stat]
                    for r in agreement for stat in AGREEMENT_STATS})


class PotentialSummary(StageSummary):
    """Images ranked by motion potential, rank agreement with the truth (split frames), what was skipped."""

    stage: ClassVar[str] = "potential"
    parent_report_patterns: ClassVar[tuple[str, ...]] = ("gallery.png", "agreement.csv", "ranking.csv")
    ranking: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    skipped: list[str]
    skipped_errors: dict[str, str]
    out_dir: str
    run_id: str
    note: str

    @property
    def spearman(self) -> dict[str, float]:
        """Spearman ρ of each method against the true mean magnitude."""
        return {r["method"]: r["spearman"] for r in self.agreement}

    def headline_metrics(self) -> dict[str, float]:
        return agreement_metrics(self.agreement)


class ExportSummary(StageSummary):
    """A rawframes export: videos in the folder, exported now, failed; its lists and report."""

    stage: ClassVar[str] = "export"
    source: str
    out: str
    videos: int
    exported_now: int
    failed: int
    frames: int
    flows: int
    clipped_values: int
    seconds: float
    frames_per_s: float
    lists: list[str]
    report: str
    store: str | None = None
    fingerprint: str | None = None
    failures: list[Failure] = []


class ImportSummary(StageSummary):
    """A rawframes import: folders found, imported, skipped as complete, failed; where labels came from."""

    stage: ClassVar[str] = "import"
    store: str
    fingerprint: str
    source: str
    labels: str
    bound_px: float
    folders: int
    skipped_complete: int
    imported: int
    failed: int
    numbering: str
    frames: int
    flows: int
    values_at_bound: int
    seconds: float
    manifest: str | None
    report: str | None
    failures: list[Failure] = []


SUMMARY_TYPES: dict[str, type[StageSummary]] = {cls.stage: cls for cls in (
    IngestSummary, ExtractSummary, TrainSummary, EvaluationSummary, RecognitionSummary, PotentialSummary)}
"""The summary type of each pipeline stage."""

AnyStageSummary = (IngestSummary | ExtractSummary | TrainSummary | EvaluationSummary | RecognitionSummary
                   | PotentialSummary)


S = TypeVar("S", bound=StageSummary)


def summary_from_record(stage: str, record: dict[str, Any]) -> StageSummary:
    """A stage's summary read back from its cache record (pydantic.ValidationError when it does not fit)."""
    return SUMMARY_TYPES[stage].model_validate(record)


class SplitsSummary(BaseModel):
    """Headline metrics per official split, their mean and std over splits, and their Markdown table."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    splits: list[int]
    per_split: dict[str, dict[str, float]]
    metrics: list[str]
    mean: dict[str, float]
    markdown: str


class StageReport(BaseModel):
    """One pipeline stage: its label (`train-split2`), ran or reused, and its seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stage: str
    status: str
    seconds: float


class PipelineSummary(BaseModel):
    """A pipeline run: its stages, each stage's summary (by label), per-split results, the MLflow parent run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stages: list[StageReport]
    results: dict[str, AnyStageSummary]
    splits: SplitsSummary | None = None
    run_id: str
    tracking_uri: str
    experiment: str
    experiment_id: str
    markdown: str

    def get(self, kind: type[S], split_index: int | None = None) -> S:
        """The summary of stage `kind` (`TrainSummary`, …), of official split `split_index` when the pipeline ran
        several; KeyError when that stage did not run."""
        label = kind.stage if split_index is None else f"{kind.stage}-split{split_index}"
        summary = self.results[label]
        if not isinstance(summary, kind):
            raise TypeError(f"stage {label} holds a {type(summary).__name__}, not a {kind.__name__}")
        return summary


class DemoSummary(BaseModel):
    """The demo: its dataset, the pipeline's summary and the held-out predictions."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dataset: str
    pipeline: PipelineSummary
    predictions: list[dict[str, Any]]
