"""The import flow: precomputed rawframes folders (denseflow / gpu_flow / TSN layout) into a flow store."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from im2flow_storage.datasets import DatasetError
from im2flow_storage.flow_store import create_flow_store
from im2flow_storage.rawframes import RawframesError, local_root
from im2flow_storage.reports import write_import_report
from im2flow_tasks.batch_progress import gather_batches
from im2flow_tasks.batching import batches_by_work
from im2flow_tasks.extract import library_versions
from im2flow_tasks.import_manifest import imported_store_config, labelled_folders, merge_manifest
from im2flow_tasks.import_rawframes import import_videos
from im2flow_tasks.interop_config import ImportConfig
from im2flow_tasks.outcomes import publish_outcome
from im2flow_tasks.run_labels import run_name
from im2flow_tasks.summaries import Failure, ImportSummary


@flow(name="import-flow", flow_run_name=lambda: run_name("import", "source_dir"), log_prints=True, persist_result=False)
def import_flow(source_dir: str, work_dir: str, config: ImportConfig = ImportConfig(),
                show_progress: bool = False) -> ImportSummary:
    """Import the rawframes folders under `source_dir` into a flow store of `work_dir` (algorithm `imported`).

    Each folder is checked (numbering 0- or 1-based, flow count = frame count − 1, every file
    readable, flow aligned with its RGB by content) and imported, or recorded with the reason and
    left out. Folders already complete and unchanged are skipped. Manifest rows (status `imported`)
    carry labels and splits. Returns a summary.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    root = local_root(source_dir).expanduser().absolute()
    try:
        folders, provenance = labelled_folders(root, config)
    except DatasetError as exc:
        raise RawframesError(str(exc)) from exc
    store = create_flow_store(work_dir, imported_store_config(root, config), library_versions())
    complete = {r.video_id: r for r in store.records(complete_only=True)}
    todo = [f for f in folders if f["frame_dir"] not in complete
            or complete[f["frame_dir"]].source_size != f["size_bytes"]
            or abs(complete[f["frame_dir"]].source_mtime - f["mtime"]) > 1e-3]
    logger.info("%s: %d video folders (labels and splits from %s), %d already imported, %d to import",
                root, len(folders), provenance, len(folders) - len(todo), len(todo))
    batches = batches_by_work(todo, lambda f: f["n_frames"], config.frames_per_task)
    futures = {import_videos.with_options(retries=config.retries, retry_delay_seconds=1).submit(
        store.url, batch, config.bound_px, config.check_alignment, config.shard_frames,
        batch[0]["frame_dir"] + (f"+{len(batch) - 1}" if len(batch) > 1 else "")): batch for batch in batches}
    outcomes = gather_batches(futures, "importing rawframes", show_progress, lambda batch, exc: [
        {"video_id": f["frame_dir"], "path": f["path"], "label": f["label"], "split": f["split"], "status": "failed",
         "error": f"task crashed: {exc!r}", "n_frames": 0, "n_flows": 0, "at_bound": 0, "numbering": "", "width": 0,
         "height": 0, "size_bytes": 0, "mtime": 0.0, "seconds": 0.0} for f in batch])
    manifest = merge_manifest(work_dir, outcomes) if outcomes else None
    report = write_import_report(store.url, outcomes) if outcomes else None
    failed = [o for o in outcomes if o["status"] != "complete"]
    imported = [o for o in outcomes if o["status"] == "complete"]
    numberings = sorted({o["numbering"] for o in imported})
    summary = ImportSummary(
        store=store.url, fingerprint=store.fingerprint, source=str(root), labels=provenance, bound_px=config.bound_px,
        folders=len(folders), skipped_complete=len(folders) - len(todo), imported=len(imported), failed=len(failed),
        numbering="; ".join(numberings) or "-", frames=sum(o["n_frames"] for o in imported),
        flows=sum(o["n_flows"] for o in imported), values_at_bound=sum(o["at_bound"] for o in imported),
        seconds=round(time.perf_counter() - started, 2), manifest=manifest, report=report,
        failures=[Failure(item=o["path"], error=o["error"]) for o in failed])
    publish_outcome("import", summary, work_dir, "Rawframes import", "not imported")
    return summary
