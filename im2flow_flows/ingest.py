"""The ingest flow: scan a dataset, probe its videos in parallel, write the Parquet manifest."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed

from im2flow_storage.datasets import scan_dataset_with_evidence
from im2flow_storage.manifest import ManifestError, read_manifest, write_manifest
from im2flow_tasks.batching import probe_batches
from im2flow_tasks.config import IngestConfig
from im2flow_tasks.ingest import check_shrink, probe_videos
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.run_labels import dataset_label, publish_table, run_name, summary_rows


def _unchanged(entry: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    if previous is None or previous["path"] != entry["path"]:
        return False
    try:
        stat = os.stat(entry["path"])
    except OSError:
        return False
    return previous["size_bytes"] == stat.st_size and abs(previous["mtime"] - stat.st_mtime) < 1e-3


@flow(name="ingest", flow_run_name=lambda: run_name("ingest", "dataset_root", dataset=True),
      log_prints=True, persist_result=False)
def ingest_flow(dataset_root: str, work_dir: str, config: IngestConfig = IngestConfig(),
                show_progress: bool = False) -> dict[str, Any]:
    """Write `work_dir`/manifest.parquet for the dataset at `dataset_root`; returns a summary.

    Videos whose file (path, size, mtime) is unchanged since the last manifest keep their row
    and are not probed again; new or changed ones are probed in batches on the task runner.
    """
    logger = get_run_logger()
    scanned, layout = scan_dataset_with_evidence(dataset_root, config.layout, config.split_index,
                                                 config.test_fraction, config.seed)
    entries = [{**asdict(e), "official_splits": ",".join(e.official_splits)} for e in scanned]
    logger.info("%s: %s", dataset_root, layout)
    try:
        previous = {r["video_id"]: r for r in read_manifest(work_dir)}
    except ManifestError:
        previous = {}
    check_shrink(previous.values(), {e["video_id"] for e in entries}, config.allow_shrink, config.shrink_limit)
    rows, todo = [], []
    for entry in entries:
        old = previous.get(entry["video_id"])
        if _unchanged(entry, old):
            rows.append({**old, "label": entry["label"], "split": entry["split"],  # type: ignore[dict-item]
                         "official_splits": entry["official_splits"]})
        else:
            todo.append(entry)
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
    splits = Counter(r["split"] for r in rows if r["status"] == "ok")
    bad = [r for r in rows if r["status"] != "ok"]
    publish_table("ingest-failures",
                  [{"video_id": r["video_id"], "status": r["status"], "error": r["error"]} for r in bad] or
                  [{"video_id": "-", "status": "all ok", "error": ""}],
                  work_dir, f"Videos not usable ({len(bad)} of {len(rows)}) in {dataset_label(dataset_root)}")
    summary = {"manifest": url, "videos": len(rows), "probed": len(todo), "status": dict(statuses),
               "ok_by_split": dict(splits), "labels": len({r["label"] for r in rows}), "layout": layout}
    publish_table("ingest-summary", summary_rows(summary), work_dir,
                  f"Ingest summary of {dataset_label(dataset_root)}")
    # The first few unusable videos of this run, for the console (all of them are in the manifest).
    summary["failures"] = [{"item": r["path"], "error": f"{r['status']}: {r['error']}"}
                           for r in bad if r["video_id"] not in previous][:21]
    logger.info("manifest written to %s: %s", url, dict(statuses))
    return summary
