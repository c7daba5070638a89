"""The import flow: precomputed rawframes folders (denseflow / gpu_flow / TSN layout) into a flow store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from im2flow_flows.extract import library_versions
from im2flow_storage.datasets import DatasetError, DatasetLayout, assign_splits, split_files_layout
from im2flow_storage.flow_store import create_flow_store
from im2flow_storage.manifest import ManifestError, read_manifest, write_manifest
from im2flow_storage.rawframes import RawframesError, local_root, read_annotation_lists, scan_rawframes
from im2flow_storage.reports import write_import_report
from im2flow_tasks.batch_progress import gather_batches
from im2flow_tasks.batching import batches_by_work
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.import_rawframes import import_videos
from im2flow_tasks.interop_config import ImportConfig
from im2flow_tasks.outcomes import publish_outcome
from im2flow_tasks.run_labels import run_name


def imported_store_config(source: Path, config: ImportConfig) -> dict[str, Any]:
    """The store configuration of an import: algorithm `imported`, so it is never mixed with extracted stores."""
    encoding = ExtractConfig(rgb_quality=config.rgb_quality).store_config()["encoding"]
    return {
        "algorithm": "imported",
        "implementation": "rawframes flow_x/flow_y JPEGs (denseflow layout), dequantized f = q·2b/255 − b",
        "params": {"format": config.format, "bound_px": config.bound_px, "source": str(source),
                   "error_px": f"≤ b/255 = {config.bound_px / 255:.4f} per component plus the source's JPEG loss; "
                               "values at 0 or 255 are clipped at ±b"},
        "resize": {"short_side": None, "size": None},
        "step": 1, "frame_stride": 1, "max_frames": None,
        "encoding": encoding,
    }


def labelled_folders(root: Path, config: ImportConfig) -> tuple[list[dict[str, Any]], str]:
    """Every video folder under `root` with its label and split, and where they came from.

    mmaction2 annotation lists in or beside `root` (layout `mmaction`, or `auto` when present) give
    labels and splits; else labels are the class folders (`<class>/<video>`) and splits come from
    UCF-101 / HMDB-51 split files near `root`, or a stratified split by group (`folders`).
    """
    folders = scan_rawframes(root)
    if not folders:
        raise RawframesError(f"no video folders (with img_/flow_x_/flow_y_ files) under {root}")
    lists = read_annotation_lists(root, config.split_index) if config.layout in ("auto", "mmaction") else None
    if config.layout == "mmaction" and lists is None:
        raise RawframesError(f"no mmaction2 lists *_train_split_{config.split_index}_rawframes.txt in {root} or "
                             "its parent")
    out = []
    if lists is not None:
        entries, classes = lists
        for folder in folders:
            index, split = entries.get(folder.frame_dir, (None, "unused"))
            if index is not None and classes:
                label = classes[index] if 0 <= index < len(classes) else str(index)
            elif "/" in folder.frame_dir:
                label = folder.frame_dir.split("/")[0]
            else:
                label = "" if index is None else str(index)
            out.append({"frame_dir": folder.frame_dir, "path": str(folder.path), "label": label, "split": split,
                        "size_bytes": folder.size_bytes, "mtime": folder.mtime, "n_frames": len(folder.files["img"])})
        return out, "mmaction2 annotation lists"
    flat = [f.frame_dir for f in folders if "/" not in f.frame_dir]
    if flat:
        raise RawframesError(f"{len(flat)} video folder(s) directly under {root} (e.g. {flat[0]}): without annotation "
                             "lists the label must be a class folder, ROOT/<class>/<video>/")
    layout = DatasetLayout(config.layout) if config.layout != "auto" else split_files_layout(root, config.split_index)
    pairs = [(f.frame_dir, f.frame_dir.split("/")[0]) for f in folders]
    splits = assign_splits(root, pairs, layout, config.split_index, config.test_fraction, config.seed)
    for folder, (_, label) in zip(folders, pairs):
        out.append({"frame_dir": folder.frame_dir, "path": str(folder.path), "label": label,
                    "split": splits[folder.frame_dir], "size_bytes": folder.size_bytes, "mtime": folder.mtime,
                    "n_frames": len(folder.files["img"])})
    return out, f"class folders, {layout.value} splits"


def _manifest_row(outcome: dict[str, Any]) -> dict[str, Any]:
    ok = outcome["status"] == "complete"
    return {"video_id": outcome["video_id"], "path": outcome["path"], "label": outcome["label"],
            "split": outcome["split"], "status": "imported" if ok else "unreadable", "error": outcome["error"],
            "warning": outcome.get("numbering", ""), "n_frames": outcome["n_frames"],
            "container_frames": outcome["n_frames"], "fps": 0.0, "width": outcome["width"],
            "height": outcome["height"], "duration_s": 0.0, "codec": "rawframes",
            "size_bytes": outcome["size_bytes"], "mtime": outcome["mtime"]}


def _merge_manifest(work_dir: str, outcomes: list[dict[str, Any]]) -> str:
    """Manifest rows of the imported folders, replacing rows of the same id in an existing manifest."""
    try:
        rows = {r["video_id"]: r for r in read_manifest(work_dir)}
    except ManifestError:
        rows = {}
    rows.update({o["video_id"]: _manifest_row(o) for o in outcomes})
    return write_manifest(rows.values(), work_dir)


@flow(name="import-flow", flow_run_name=lambda: run_name("import", "source_dir"), log_prints=True, persist_result=False)
def import_flow(source_dir: str, work_dir: str, config: ImportConfig = ImportConfig(),
                show_progress: bool = False) -> dict[str, Any]:
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
    manifest = _merge_manifest(work_dir, outcomes) if outcomes else None
    report = write_import_report(store.url, outcomes) if outcomes else None
    failed = [o for o in outcomes if o["status"] != "complete"]
    imported = [o for o in outcomes if o["status"] == "complete"]
    numberings = sorted({o["numbering"] for o in imported})
    summary = {"store": store.url, "fingerprint": store.fingerprint, "source": str(root), "labels": provenance,
               "bound_px": config.bound_px, "folders": len(folders), "skipped_complete": len(folders) - len(todo),
               "imported": len(imported), "failed": len(failed), "numbering": "; ".join(numberings) or "-",
               "frames": sum(o["n_frames"] for o in imported), "flows": sum(o["n_flows"] for o in imported),
               "values_at_bound": sum(o["at_bound"] for o in imported), "seconds": round(time.perf_counter() - started,
                                                                                         2),
               "manifest": manifest, "report": report}
    failures = [{"item": o["path"], "error": o["error"]} for o in failed]
    publish_outcome("import", summary, failures, work_dir, "Rawframes import", "not imported")
    return {**summary, "failures": failures}
