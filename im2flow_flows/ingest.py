"""The ingest flow: scan a dataset, probe its videos in parallel, write the Parquet manifest."""

# No `from __future__ import annotations`: Prefect validates `scan` (a pydantic model) against this signature,
# and a deployment's run could not resolve the model's name from a string annotation.

from collections import Counter
from dataclasses import asdict

from prefect import flow, get_run_logger
from prefect.futures import as_completed

from im2flow_storage.manifest import ManifestError, read_manifest, write_manifest
from im2flow_tasks.batching import probe_batches
from im2flow_tasks.config import IngestConfig
from im2flow_tasks.ingest import DatasetScan, check_shrink, probe_videos, reuse_unchanged, scan_dataset_once
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.run_labels import dataset_label, publish_table, run_name
from im2flow_tasks.summaries import Failure, IngestSummary


@flow(name="ingest", flow_run_name=lambda: run_name("ingest", "dataset_root", dataset=True),
      log_prints=True, persist_result=False)
def ingest_flow(dataset_root: str, work_dir: str, config: IngestConfig = IngestConfig(),
                show_progress: bool = False, scan: DatasetScan | None = None) -> IngestSummary:
    """Write `work_dir`/manifest.parquet for the dataset at `dataset_root`; returns a summary.

    `scan`: the dataset as the caller already scanned it (the pipeline does, for its cache key), so it is not
    scanned twice. Videos whose file (path, size, mtime) is unchanged since the last manifest keep their row
    and are not probed again; new or changed ones are probed in batches on the task runner.
    """
    logger = get_run_logger()
    if scan is None or scan.entries is None:
        # Scanned here, not as a task run of its own: a standalone ingest's start-up pays no extra API round trips.
        scan = scan_dataset_once.fn(dataset_root, config)
    entries = [{**asdict(e), "official_splits": ",".join(e.official_splits)} for e in scan.entries or []]
    logger.info("%s: %s", dataset_root, scan.layout)
    try:
        previous = {r["video_id"]: r for r in read_manifest(work_dir)}
    except ManifestError:
        previous = {}
    check_shrink(previous.values(), {e["video_id"] for e in entries}, config.allow_shrink, config.shrink_limit)
    rows, todo = reuse_unchanged(entries, previous)
    logger.info("%d videos found, %d unchanged since the last manifest, %d to probe", len(entries), len(rows),
                len(todo))
    batches = probe_batches(todo, config.megabytes_per_task)
    futures = [probe_videos.submit(b, config.min_frames, f"{b[0]['video_id']}+{len(b) - 1}", config.max_frame_pixels,
                                   config.max_frames) for b in batches]
    with RunProgress(len(todo), "probing videos", show_progress) as progress:
        for future in as_completed(futures):
            batch = future.result()
            rows.extend(batch)
            progress.advance(len(batch))
    url = write_manifest(rows, work_dir)
    statuses = Counter(r["status"] for r in rows)
    bad = [r for r in rows if r["status"] != "ok"]
    publish_table("ingest-failures",
                  [{"video_id": r["video_id"], "status": r["status"], "error": r["error"]} for r in bad] or
                  [{"video_id": "-", "status": "all ok", "error": ""}],
                  work_dir, f"Videos not usable ({len(bad)} of {len(rows)}) in {dataset_label(dataset_root)}")
    summary = IngestSummary(
        manifest=url, videos=len(rows), probed=len(todo), status=dict(statuses),
        ok_by_split=dict(Counter(r["split"] for r in rows if r["status"] == "ok")),
        labels=len({r["label"] for r in rows}), layout=scan.layout,
        # The first few unusable videos of this run, for the console (all of them are in the manifest).
        failures=[Failure(item=r["path"], error=f"{r['status']}: {r['error']}")
                  for r in bad if r["video_id"] not in previous][:21])
    publish_table("ingest-summary", summary.rows(), work_dir, f"Ingest summary of {dataset_label(dataset_root)}")
    logger.info("manifest written to %s: %s", url, dict(statuses))
    return summary
