"""The pipeline: ingest → extract → train → evaluate → recognize → potential as one Prefect flow.

Each stage's flow is called by the pipeline (one level of nesting), through the stage cache
(im2flow_tasks.stages): a stage whose inputs (the dataset's files, the manifest, the flow store's
videos, the model file) and configuration did not change is skipped, and its last summary reused.
Within a stage, work already done is skipped too (probed videos, complete videos, finished training
epochs, trained streams), so a killed run resumes where it stopped. One MLflow parent run per
pipeline run holds every stage's runs nested under it, every configuration field as a param, and
the headline metrics.
"""

# No `from __future__ import annotations`: Prefect validates `configs` (a pydantic model) against this signature,
# and a deployment's run could not resolve the model's name from a string annotation.

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from im2flow_flows.evaluate import evaluate_flow
from im2flow_flows.extract import extract_flow
from im2flow_flows.ingest import ingest_flow
from im2flow_flows.potential import potential_flow
from im2flow_flows.recognize import recognize_flow
from im2flow_flows.train import train_flow
from im2flow_services.dask_cluster import dask_scheduler, task_runner
from im2flow_services.preflight import check_dask, check_mlflow
from im2flow_storage import open_flow_store
from im2flow_storage.digests import digest, file_digest, manifest_digest, store_digest
from im2flow_storage.paths import pipeline_cache_url
from im2flow_tasks.ingest import DatasetScan, scan_dataset_once
from im2flow_tasks.pipeline_config import PipelineConfigs, load_pipeline_configs, section_params
from im2flow_tasks.pipeline_report import summary_markdown
from im2flow_tasks.run_labels import dataset_label, publish_markdown, publish_table, run_name
from im2flow_tasks.split_report import split_summary
from im2flow_tasks.stages import run_stage
from im2flow_tasks.summaries import (
    EvaluationSummary,
    ExtractSummary,
    IngestSummary,
    PipelineSummary,
    PotentialSummary,
    RecognitionSummary,
    StageReport,
    StageSummary,
    TrainSummary,
)
from im2flow_tasks.tracking import default_tracking_uri, flatten, git_commit, log_parent_artifacts, now_ms, tracked_run


def _run_name() -> str:
    """`--run-name` when given, else `pipeline-<dataset label>` (`pipeline-ucf101`, `pipeline-im2flow-demo/dataset`)."""
    params = flow_run.parameters
    configs = params.get("configs")
    chosen = ((configs.pipeline.run_name if isinstance(configs, PipelineConfigs) else
               ((configs or {}).get("pipeline") or {}).get("run_name"))
              or ((params.get("overrides") or {}).get("pipeline") or {}).get("run_name"))
    return str(chosen) if chosen else run_name("pipeline", "dataset_root", dataset=True)


@flow(name="pipeline", flow_run_name=_run_name, log_prints=True, persist_result=False)
def pipeline_flow(dataset_root: str, work_dir: str, config_file: str | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None, preset: str | None = None,
                  show_progress: bool = False, configs: PipelineConfigs | None = None) -> PipelineSummary:
    """Run the configured stages on the dataset at `dataset_root` into `work_dir`; returns every summary.

    `configs`: the configuration, already loaded (the CLI loads and checks it once); else it is loaded from
    `config_file` (the pipeline YAML), `overrides` (flags and `--set` values, section → fields) and `preset`
    (`demo`), as a scheduled deployment does on each run. Configuration errors and unreachable services fail
    before any work starts.
    """
    return run_pipeline(dataset_root, work_dir, configs or load_pipeline_configs(config_file, overrides, preset),
                        show_progress)


S = TypeVar("S", bound=StageSummary)


class _Stages:
    """Runs the pipeline's stages in order through the stage cache, each waiting for the one before, and records
    their summaries, time and headline metrics on the active (parent) MLflow run."""

    def __init__(self, work_dir: str, configs: PipelineConfigs, tracking_uri: str) -> None:
        self.work_dir, self.configs, self.tracking_uri = work_dir, configs, tracking_uri
        self.cache_url = pipeline_cache_url(work_dir)
        self.results: dict[str, StageSummary] = {}
        self.report: list[StageReport] = []
        self.by_split: dict[int, dict[str, float]] = {}  # official split → its headline metrics
        self.upstream: list[Any] = []  # the previous stage's handle: each stage waits for it (an edge in the graph)

    def run(self, kind: type[S], key_parts: list[Any], call: Callable[[list[Any]], StageSummary],
            split_index: int | None = None) -> S | None:
        """Run (or reuse) stage `kind` keyed by `key_parts`; `call(wait_for)` calls its flow. Returns its summary,
        None when the stage is not configured to run."""
        name = kind.stage
        if name not in self.configs.pipeline.stages:
            return None
        # With several official splits, each split's stages are told apart: "train-split2".
        label = name if split_index is None else f"{name}-split{split_index}"
        started_ms, started = now_ms(), time.perf_counter()
        outcome = run_stage(label, kind, digest([self.work_dir, *key_parts]), self.cache_url, call,
                            self.configs.pipeline.refresh, self.upstream)
        self.upstream[:] = [outcome.handle]
        seconds = time.perf_counter() - started
        self.results[label] = outcome.summary
        self.report.append(StageReport(stage=label, status="cached (inputs unchanged)" if outcome.cached else "ran",
                                       seconds=round(seconds, 1)))
        metrics = outcome.summary.headline_metrics()
        if split_index is not None:
            self.by_split.setdefault(split_index, {}).update(metrics)
            metrics = {f"{metric}_split{split_index}": value for metric, value in metrics.items()}
        mlflow.log_metrics({**metrics, f"seconds_{label}": seconds})
        mlflow.set_tag(f"stage_{label}", "cached" if outcome.cached else "ran")
        if outcome.cached or name in ("ingest", "extract"):
            self._record_run(label, name, outcome.summary, outcome.cached, metrics, started_ms, split_index)
        get_run_logger().info("stage %s %s in %.1f s", name, "reused (cached)" if outcome.cached else "ran", seconds)
        return outcome.summary if isinstance(outcome.summary, kind) else None

    def _record_run(self, label: str, name: str, summary: StageSummary, cached: bool, metrics: dict[str, float],
                    started_ms: int, split_index: int | None) -> None:
        """A nested MLflow run for a stage without runs of its own (ingest, extract) or a cached one, spanning the
        stage's own start and end (it is recorded after the work)."""
        source = getattr(summary, "run_id", "")
        section = {"potential": "evaluate"}.get(name, name)
        with tracked_run(self.tracking_uri, self.configs.pipeline.experiment, label, started_ms=started_ms,
                         tags={"stage": name, "cached": str(cached).lower(), "source_run_id": str(source),
                               "split_index": str(split_index or "")}):
            mlflow.log_params(flatten(section_params(getattr(self.configs, section))))
            if metrics:
                mlflow.log_metrics(metrics)


def _run_stages(stages: _Stages, dataset_root: str, scan: DatasetScan | None, address: str,
                show_progress: bool) -> None:
    """Every configured stage, in order: ingest and extract once, then train → evaluate → recognize → potential
    for each official split (one flow store serves every split: only labels and splits differ)."""
    work_dir, configs = stages.work_dir, stages.configs
    ing, ext = configs.ingest, configs.extract
    ingest_key = [str(Path(dataset_root).absolute()), scan.digest if scan else "",
                  ing.model_dump(mode="json", exclude={"workers", "dask_address"})]
    stages.run(IngestSummary, ingest_key, lambda wait_for: ingest_flow.with_options(task_runner=task_runner(address))(
        dataset_root, work_dir, ing, show_progress=show_progress, scan=scan, wait_for=wait_for))
    extract = stages.run(ExtractSummary, [manifest_digest(work_dir), ext.store_config()],
                         lambda wait_for: extract_flow.with_options(task_runner=task_runner(address))(
                             work_dir, ext, show_progress=show_progress, wait_for=wait_for))
    fingerprint = configs.train.store_fingerprint or (extract.fingerprint if extract else None)
    needs_store = any(s in configs.pipeline.stages for s in ("train", "evaluate", "recognize", "potential"))
    store = open_flow_store(work_dir, fingerprint) if needs_store else None
    if store is not None:
        mlflow.set_tag("store_fingerprint", store.fingerprint)
    for split_index in configs.pipeline.splits or (None,):
        content = store_digest(store.for_split(split_index)) if store is not None else ""
        update = {"store_fingerprint": store.fingerprint if store else None, "split_index": split_index}
        train_cfg = configs.train.model_copy(update=update)
        train = stages.run(TrainSummary, [content, train_cfg.content_dict()],
                           lambda wait_for, cfg=train_cfg: train_flow(work_dir, cfg, show_progress=show_progress,
                                                                      wait_for=wait_for), split_index)
        model = train.export if train else configs.evaluate.model
        # A model file is keyed by its size and mtime; a registry URI by its text (re-registering is not seen).
        model_key = file_digest(model) if model and not model.startswith(("models:/", "runs:/")) else str(model)
        eval_cfg = configs.evaluate.model_copy(update={**update, "model": model})
        eval_key = [content, model_key, eval_cfg.model_dump(mode="json", exclude={"mlflow_tracking_uri"})]
        stages.run(EvaluationSummary, eval_key,
                   lambda wait_for, cfg=eval_cfg: evaluate_flow(work_dir, cfg, show_progress=show_progress,
                                                                wait_for=wait_for), split_index)
        rec_cfg = configs.recognize.model_copy(update={**update, "model": model})
        stages.run(RecognitionSummary, [content, model_key, rec_cfg.content_dict()],
                   lambda wait_for, cfg=rec_cfg: recognize_flow(work_dir, cfg, show_progress=show_progress,
                                                                 wait_for=wait_for), split_index)
        stages.run(PotentialSummary, eval_key,
                   lambda wait_for, cfg=eval_cfg: potential_flow(work_dir, None, cfg, show_progress=show_progress,
                                                                 wait_for=wait_for), split_index)


def run_pipeline(dataset_root: str, work_dir: str, configs: PipelineConfigs,
                 show_progress: bool = False) -> PipelineSummary:
    """The body of `pipeline_flow` (inside a flow run): services checked and the dataset scanned once, the
    stages run, the MLflow parent run and the Prefect artifacts written."""
    logger = get_run_logger()
    pipe = configs.pipeline
    tracking_uri = default_tracking_uri(work_dir, pipe.mlflow_tracking_uri)
    check_mlflow(tracking_uri)
    check_dask(pipe.dask_address)
    configs = configs.with_tracking(tracking_uri)  # resolved once, for every stage
    # The dataset is read only when ingest runs: the model stages may run on a store imported from
    # rawframes, whose "dataset root" holds no videos.
    scan = scan_dataset_once(dataset_root, configs.ingest, pipe.splits) if "ingest" in pipe.stages else None
    tags = {"dataset": str(Path(dataset_root).absolute()), "dataset_digest": scan.digest if scan else "",
            "work_dir": work_dir, "git_commit": git_commit(), "preset": pipe.preset, "stages": ",".join(pipe.stages),
            "prefect_flow_run_id": str(flow_run.id or "")}
    parent_name = pipe.run_name or _run_name()
    stages = _Stages(work_dir, configs, tracking_uri)
    with dask_scheduler(pipe.workers, pipe.dask_address) as address, \
            tracked_run(tracking_uri, pipe.experiment, parent_name, tags=tags) as parent:
        mlflow.log_params(flatten(configs.as_params()))
        logger.info("pipeline %s: stages %s; MLflow run %s in %s; Dask %s", parent_name, ", ".join(pipe.stages),
                    parent.info.run_id, tracking_uri, address)
        _run_stages(stages, dataset_root, scan, address, show_progress)
        splits = split_summary(stages.by_split) if stages.by_split else None
        if splits is not None:
            mlflow.log_metrics({k: v for k, v in splits.mean.items() if math.isfinite(v)})
        mlflow.set_tag("stages_cached", ",".join(r.stage for r in stages.report if r.status != "ran") or "none")
        markdown = summary_markdown(parent_name, stages.report, stages.results, splits, parent.info.run_id,
                                    tracking_uri, parent.info.experiment_id)
        # The parent run is what a user opens first: the headline, the reports and the model it registered.
        log_parent_artifacts(markdown, stages.results)
    publish_table("pipeline-stages", [r.model_dump() for r in stages.report], work_dir,
                  f"Pipeline stages of {dataset_label(dataset_root)}: ran or reused, and their time")
    publish_markdown("pipeline-summary", markdown, work_dir, f"Pipeline run summary of {dataset_label(dataset_root)}")
    return PipelineSummary(stages=stages.report, results=stages.results, splits=splits, run_id=parent.info.run_id,
                           tracking_uri=tracking_uri, experiment=pipe.experiment,
                           experiment_id=parent.info.experiment_id, markdown=markdown)
