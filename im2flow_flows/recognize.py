"""The recognize flow: two-stream static-image action recognition with late fusion, over seeds.

For each seed: the appearance stream (RGB), the motion stream (G's hallucinated flow) and, on video
frames, the oracle motion stream (true TV-L1 flow); the fusion weight is chosen on validation
scores; accuracies are measured on the test split by frame/image and by video (mean frame scores).
Results: `W/recognize/<fingerprint>/` (table.csv/md, per_seed.csv, confusion_*.png, stream files),
one MLflow parent run (means and spreads over seeds) with nested runs per stream and seed, and a
Prefect table artifact.
"""

from __future__ import annotations

import dataclasses

import mlflow
from prefect import flow, get_run_logger

from im2flow_storage.paths import split_name
from im2flow_tasks.config import RecognizeConfig
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.previews import ARTIFACT_IMAGE_BUDGET, png_data_uri
from im2flow_tasks.recognition_report import (
    freeze_generator,
    load_recognition_data,
    published_rows,
    score_seed,
    summarize_recognition,
    table_metrics,
)
from im2flow_tasks.recognize import STREAMS, train_stream
from im2flow_tasks.run_labels import publish_markdown, publish_table
from im2flow_tasks.summaries import RecognitionSummary
from im2flow_tasks.tracking import flatten, git_commit, log_artifact_url, ready_tracking_uri, tracked_run


@flow(name="recognize", flow_run_name="recognize-{config.split}", log_prints=True, persist_result=False)
def recognize_flow(work_dir: str, config: RecognizeConfig = RecognizeConfig(),
                   show_progress: bool = False) -> RecognitionSummary:
    """Train and evaluate the streams for every seed; returns the table, paths and the MLflow run id.

    `show_progress`: a terminal bar per stream and seed (the Prefect UI always gets progress artifacts).
    """
    logger = get_run_logger()
    tracking_uri = ready_tracking_uri(work_dir, config.mlflow_tracking_uri)  # before any long work
    data, source_tag = load_recognition_data(work_dir, config)
    for skipped in data.skipped:
        logger.warning("skipped %s: %s", skipped["item"], skipped["reason"])
    streams = [s for s in STREAMS if s != "oracle" or (config.oracle and data.has_true_flow)]
    run = freeze_generator(work_dir, config, data.labels, source_tag, tracking_uri)
    logger.info("recognition on %s: %d labels, %d train / %d validation / %d test samples; streams %s; seeds %s",
                data.kind, len(data.labels), len(data.train), len(data.val), len(data.test), ", ".join(streams),
                list(config.seeds))
    tags = {"dataset": source_tag, "source": data.kind, "split": config.split, "recognize_fingerprint": run.fingerprint,
            "split_index": str(config.split_index or ""), "model": config.model or "registry alias",
            "git_commit": git_commit()}
    with tracked_run(tracking_uri, config.experiment, f"recognize-{split_name(config.split, config.split_index)}",
                     tags=tags) as parent:
        mlflow.log_params(flatten({**config.content_dict(), "train_samples": len(data.train),
                                   "val_samples": len(data.val), "test_samples": len(data.test)}))
        run = dataclasses.replace(run, parent_run_id=parent.info.run_id)
        seeds = [score_seed(config, data, seed, {s: train_stream(config, data, s, seed, run, show_progress)
                                                 for s in streams})
                 for seed in config.seeds]
        report = summarize_recognition(seeds, data)
        paths = write_report(run.run_dir, report.files, "recognition")
        for path in paths:
            log_artifact_url(path, "report")
        mlflow.log_metrics(table_metrics(report.table))
    publish_table("recognition-accuracy", published_rows(report.table), work_dir,
                  f"Static-image action recognition on the {config.split} split")
    # The images share one artifact's budget; the full-size PNGs are in the report folder.
    per_image = ARTIFACT_IMAGE_BUDGET // max(1, len(report.images))
    confusion_md = "\n".join(f"![{m}]({png_data_uri(img, per_image)})" for m, img in report.images.items())
    if report.images:
        confusion_md += f"\n\nFull-size confusion matrices: `{run.run_dir}` (`confusion_<method>.png`)."
    publish_markdown("recognition-report", f"# Recognition ({config.split})\n\n{report.markdown}\n\n{confusion_md}",
                     work_dir, "Accuracy table and confusion matrices")
    logger.info("recognition on the %s split (mean ± std over %d seeds):\n%s", config.split, len(config.seeds),
                report.markdown)
    return RecognitionSummary(table=report.table, markdown=report.markdown,
                              per_seed=report.per_seed, out_dir=run.run_dir,
                              run_id=parent.info.run_id, labels=data.labels, skipped=data.skipped, files=paths)
