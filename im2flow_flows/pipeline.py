"""The pipeline: ingest → extract → train → evaluate → recognize → potential as one Prefect flow.

Each stage is a subflow run inside a cached stage task (im2flow_tasks.stages): a stage whose inputs (the
dataset's files, the manifest, the flow store's videos, the model file) and configuration did not
change is skipped, and its last summary reused. Within a stage, work already done is skipped too
(probed videos, complete videos, finished training epochs, trained streams), so a killed run
resumes where it stopped. One MLflow parent run per pipeline run holds every stage's runs nested
under it, every configuration field as a param, and the headline metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from im2flow_storage.datasets import check_official_splits, scan_dataset
from im2flow_storage.digests import dataset_digest, digest, file_digest, manifest_digest, store_digest
from im2flow_storage.paths import pipeline_cache_url
from im2flow_tasks.pipeline_config import PipelineConfigs, load_pipeline_configs, section_params
from im2flow_tasks.run_labels import dataset_label, publish_markdown, publish_table, run_name
from im2flow_tasks.split_report import split_summary
from im2flow_tasks.stages import run_stage
from im2flow_tasks.tracking import (
    default_tracking_uri,
    flatten,
    git_commit,
    log_parent_artifacts,
    now_ms,
    tracked_run,
    ui_model_url,
    ui_run_url,
)

HEADLINE_METRICS = {
    "ingest": {"videos": "ingest_videos", "probed": "ingest_probed"},
    "extract": {"videos_ok": "extract_videos", "extracted": "extract_extracted", "failed": "extract_failed",
                "flows_per_s": "extract_flows_per_s"},
    "train": {"phi_val_acc": "phi_val_acc", "generator_best_val_loss": "generator_best_val_loss",
              "generator_epochs": "generator_epochs"},
}
"""Summary field → metric name logged on the pipeline's parent run, per stage (evaluate and
recognize log the DESIGN.md metric names: epe … os_fg, acc_appearance, acc_motion, acc_fused …)."""


def _run_name() -> str:
    """`--run-name` when given, else `pipeline-<dataset label>` (`pipeline-ucf101`, `pipeline-im2flow-demo/dataset`)."""
    chosen = ((flow_run.parameters.get("overrides") or {}).get("pipeline") or {}).get("run_name")
    return str(chosen) if chosen else run_name("pipeline", "dataset_root", dataset=True)


def headline_metrics(stage: str, summary: dict[str, Any]) -> dict[str, float]:
    """The metrics a stage's summary contributes to the parent run (finite numbers only)."""
    out: dict[str, float] = {}
    if stage == "evaluate":
        row = next((r for r in summary["table"] if r["method"] == "Im2Flow"), {})
        out = {k: v for k, v in row.items() if k != "method"}
    elif stage == "recognize":
        for row in summary["table"]:
            out[f"acc_{row['method']}"] = row["acc"]
            out[f"acc_{row['method']}_std"] = row["acc_std"]
            out[f"video_acc_{row['method']}"] = row["video_acc"]
    elif stage == "potential":
        out = {f"potential_{stat}_{r['method'].lower().replace(' ', '_')}": r[stat] for r in summary["agreement"]
               for stat in ("spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high")}
    else:
        out = {metric: summary.get(field) for field, metric in HEADLINE_METRICS.get(stage, {}).items()}
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}


@flow(name="pipeline", flow_run_name=_run_name, log_prints=True, persist_result=False)
def pipeline_flow(dataset_root: str, work_dir: str, config_file: str | None = None,
                  overrides: dict[str, dict[str, Any]] | None = None, preset: str | None = None,
                  show_progress: bool = False) -> dict[str, Any]:
    """Run the configured stages on the dataset at `dataset_root` into `work_dir`; returns every summary.

    `config_file` is the pipeline YAML, `overrides` the flags and `--set` values (section → fields),
    `preset` a named preset (`demo`). Configuration errors and unreachable services fail before any
    work starts.
    """
    configs = load_pipeline_configs(config_file, overrides, preset)
    return run_pipeline(dataset_root, work_dir, configs, show_progress)


def run_pipeline(dataset_root: str, work_dir: str, configs: PipelineConfigs,
                 show_progress: bool = False) -> dict[str, Any]:
    """The body of `pipeline_flow` (inside a flow run): stages, cache keys, MLflow parent run, artifacts."""
    logger = get_run_logger()
    pipe = configs.pipeline
    tracking_uri = default_tracking_uri(work_dir, pipe.mlflow_tracking_uri)
    check_mlflow(tracking_uri)
    check_dask(pipe.dask_address)
    ing = configs.ingest
    # The dataset is read only when ingest runs: the model stages may run on a store imported from
    # rawframes, whose "dataset root" holds no videos.
    data_digest = ""
    if "ingest" in pipe.stages:
        entries = scan_dataset(dataset_root, ing.layout, ing.split_index, ing.test_fraction, ing.seed)
        check_official_splits(entries, pipe.splits)
        data_digest = dataset_digest(entries)
    cache_url = pipeline_cache_url(work_dir)
    results: dict[str, dict[str, Any]] = {}
    report: list[dict[str, Any]] = []
    tags = {"dataset": str(Path(dataset_root).absolute()), "dataset_digest": data_digest, "work_dir": work_dir,
            "git_commit": git_commit(), "preset": pipe.preset, "stages": ",".join(pipe.stages),
            "prefect_flow_run_id": str(flow_run.id or "")}
    parent_name = pipe.run_name or _run_name()
    with dask_scheduler(pipe.workers, pipe.dask_address) as address, \
            tracked_run(tracking_uri, pipe.experiment, parent_name, tags=tags) as parent:
        mlflow.log_params(flatten(configs.as_params()))
        logger.info("pipeline %s: stages %s; MLflow run %s in %s; Dask %s", parent_name, ", ".join(pipe.stages),
                    parent.info.run_id, tracking_uri, address)

        by_split: dict[int, dict[str, float]] = {}  # official split → its headline metrics

        upstream: list[Any] = []  # the previous stage's handle: each stage waits for it (an edge in the graph)

        def stage(name: str, key_parts: list[Any], run: Callable[[list[Any]], dict[str, Any]],
                  split_index: int | None = None) -> dict[str, Any] | None:
            if name not in pipe.stages:
                return None
            # With several official splits, each split's stages are told apart: "train-split2".
            label = name if split_index is None else f"{name}-split{split_index}"
            started_ms = now_ms()
            started = time.perf_counter()
            outcome = run_stage(label, digest([work_dir, *key_parts]), cache_url, run, pipe.refresh, upstream)
            upstream[:] = [outcome.handle]
            summary, cached = outcome.summary, outcome.cached
            seconds = time.perf_counter() - started
            results[label] = summary
            report.append({"stage": label, "status": "cached (inputs unchanged)" if cached else "ran",
                           "seconds": round(seconds, 1)})
            metrics = headline_metrics(name, summary)
            if split_index is not None:
                by_split.setdefault(split_index, {}).update(metrics)
                metrics = {f"{metric}_split{split_index}": value for metric, value in metrics.items()}
            mlflow.log_metrics({**metrics, f"seconds_{label}": seconds})
            mlflow.set_tag(f"stage_{label}", "cached" if cached else "ran")
            if cached or name in ("ingest", "extract"):
                # Stages without MLflow runs of their own, and cached stages, get a nested run here that
                # spans the stage's own start and end (it is recorded after the work).
                source = summary.get("run_id") or summary.get("train_run_id") or ""
                section = {"potential": "evaluate"}.get(name, name)
                with tracked_run(tracking_uri, pipe.experiment, label, started_ms=started_ms,
                                 tags={"stage": name, "cached": str(cached).lower(), "source_run_id": str(source),
                                       "split_index": str(split_index or "")}):
                    mlflow.log_params(flatten(section_params(getattr(configs, section))))
                    if metrics:
                        mlflow.log_metrics(metrics)
            logger.info("stage %s %s in %.1f s", name, "reused (cached)" if cached else "ran", seconds)
            return summary

        ingest_key = [str(Path(dataset_root).absolute()), data_digest,
                      ing.model_dump(mode="json", exclude={"workers", "dask_address"})]
        stage("ingest", ingest_key,
              lambda wait_for: ingest_flow.with_options(task_runner=task_runner(address))(
                  dataset_root, work_dir, ing, show_progress=show_progress, wait_for=wait_for))
        ext = configs.extract
        extract = stage("extract", [manifest_digest(work_dir), ext.store_config()],
                        lambda wait_for: extract_flow.with_options(task_runner=task_runner(address))(
                            work_dir, ext, show_progress=show_progress, wait_for=wait_for))
        fingerprint = configs.train.store_fingerprint or (extract or {}).get("fingerprint")
        needs_store = any(s in pipe.stages for s in ("train", "evaluate", "recognize", "potential"))
        store = open_flow_store(work_dir, fingerprint) if needs_store else None
        if store is not None:
            mlflow.set_tag("store_fingerprint", store.fingerprint)
        for split_index in pipe.splits or (None,):
            # One flow store for every split: only labels and splits (the manifest's) differ between them.
            split_store = store.for_split(split_index) if store is not None else None
            content = store_digest(split_store) if split_store is not None else ""
            update = {"store_fingerprint": store.fingerprint if store else None, "split_index": split_index}
            train_cfg = configs.train.model_copy(update=update)
            train = stage("train", [content, train_cfg.content_dict()],
                          lambda wait_for, cfg=train_cfg: train_flow(work_dir, cfg, show_progress=show_progress,
                                                                     wait_for=wait_for), split_index)
            model = (train or {}).get("export") or configs.evaluate.model
            # A model file is keyed by its size and mtime; a registry URI by its text (re-registering is not seen).
            model_key = file_digest(model) if model and not model.startswith(("models:/", "runs:/")) else str(model)
            eval_cfg = configs.evaluate.model_copy(update={**update, "model": model})
            stage("evaluate", [content, model_key, eval_cfg.model_dump(mode="json")],
                  lambda wait_for, cfg=eval_cfg: evaluate_flow(work_dir, cfg, show_progress=show_progress,
                                                               wait_for=wait_for), split_index)
            rec_cfg = configs.recognize.model_copy(update={**update, "model": model})
            stage("recognize", [content, model_key, rec_cfg.content_dict()],
                  lambda wait_for, cfg=rec_cfg: recognize_flow(work_dir, cfg, show_progress=show_progress,
                                                                wait_for=wait_for), split_index)
            stage("potential", [content, model_key, eval_cfg.model_dump(mode="json")],
                  lambda wait_for, cfg=eval_cfg: potential_flow(work_dir, None, cfg, show_progress=show_progress,
                                                                wait_for=wait_for), split_index)
        if by_split:
            results["splits"] = split_summary(by_split)
            mlflow.log_metrics({k: v for k, v in results["splits"]["mean"].items() if math.isfinite(v)})
        cached = [r["stage"] for r in report if r["status"] != "ran"]
        mlflow.set_tag("stages_cached", ",".join(cached) or "none")
        markdown = summary_markdown(parent_name, report, results, parent.info.run_id, tracking_uri,
                                    parent.info.experiment_id)
        # The parent run is what a user opens first: the headline, the reports and the model it registered.
        log_parent_artifacts(markdown, results)
    publish_table("pipeline-stages", report, work_dir, f"Pipeline stages of {dataset_label(dataset_root)}: "
                  "ran or reused, and their time")
    publish_markdown("pipeline-summary", markdown, work_dir, f"Pipeline run summary of {dataset_label(dataset_root)}")
    return {"stages": report, "results": results, "run_id": parent.info.run_id, "tracking_uri": tracking_uri,
            "experiment": pipe.experiment, "experiment_id": parent.info.experiment_id, "markdown": markdown}


def summary_markdown(run_name: str, report: list[dict[str, Any]], results: dict[str, dict[str, Any]],
                     run_id: str, tracking_uri: str, experiment_id: str) -> str:
    """The pipeline's headline as Markdown: stages and their time, the flow table, recognition, links."""
    lines = [f"# {run_name}", "", f"MLflow parent run `{run_id}` in `{tracking_uri}`: "
             f"[open in MLflow's UI]({ui_run_url(tracking_uri, experiment_id, run_id)}).", "",
             "| stage | status | seconds |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {r['status']} | {r['seconds']} |" for r in report]
    trained = [s for label, s in results.items() if label.split("-")[0] == "train" and s.get("model_version")]
    for train in trained:
        name = str(train["model_uri"]).removeprefix("models:/").split("@")[0]
        lines += ["", f"Registered model: `{train['model_uri']}`, version {train['model_version']} "
                  f"([open in MLflow's UI]({ui_model_url(tracking_uri, name, str(train['model_version']))}))."]
    if "splits" in results:
        lines += ["", "## Per official split, and their mean ± std", "", results["splits"]["markdown"]]
    if "evaluate" in results:
        lines += ["", "## Flow prediction", "", results["evaluate"]["markdown"]]
    if "recognize" in results:
        lines += ["", "## Static-image action recognition", "", results["recognize"]["markdown"]]
    return "\n".join(lines)
