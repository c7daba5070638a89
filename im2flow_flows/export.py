"""The export flow: a flow store's videos, or G's hallucinated flow, as mmaction2/TSN rawframes folders."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from im2flow_storage import FlowStoreError, open_flow_store
from im2flow_storage.images import IMAGE_EXTENSIONS, read_rgb_image_checked
from im2flow_storage.manifest import ManifestError
from im2flow_storage.rawframes import (
    check_export_root,
    check_export_settings,
    finished_videos,
    local_root,
    write_annotation_lists,
)
from im2flow_storage.reports import csv_text
from im2flow_tasks.batch_progress import gather_batches
from im2flow_tasks.batching import batches_by_work
from im2flow_tasks.export import export_hallucinated_video, export_videos, with_frame_dirs
from im2flow_tasks.interop_config import ExportConfig
from im2flow_tasks.outcomes import publish_outcome
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.run_labels import run_name

REPORT_NAME = "im2flow_export_report.csv"
REPORT_COLUMNS = ("frame_dir", "video_id", "label", "split", "status", "error", "n_frames", "n_flows", "n_clipped")


def _finish(root: Path, config: ExportConfig, outcomes: list[dict[str, Any]], classes: list[str],
            started: float, extra: dict[str, Any]) -> dict[str, Any]:
    """Annotation lists over every finished video, the report, the artifacts and the summary."""
    finished = finished_videos(root)
    # Classes of videos finished by earlier runs into the same folder belong in classInd.txt too.
    classes = sorted(set(classes) | {str(r.get("label", "")) for r in finished.values()})
    lists = write_annotation_lists(root, config.list_name, config.split_index, finished.values(), classes)
    failed = [o for o in outcomes if o["status"] != "exported"]
    rows = [{c: v.get(c, "") for c in REPORT_COLUMNS} for v in
            sorted([{**r, "status": "exported", "error": ""} for r in finished.values()] + failed,
                   key=lambda r: r["frame_dir"])]
    (root / REPORT_NAME).write_text(csv_text(rows) if rows else ",".join(REPORT_COLUMNS) + "\n")
    exported = [o for o in outcomes if o["status"] == "exported"]
    elapsed = time.perf_counter() - started
    summary = {**extra, "out": str(root), "videos": len(finished), "exported_now": len(exported),
               "failed": len(failed), "frames": sum(o["n_frames"] for o in exported),
               "flows": sum(o["n_flows"] for o in exported),
               "clipped_values": sum(int(r.get("n_clipped", 0)) for r in finished.values()),
               "seconds": round(elapsed, 2),
               "frames_per_s": round(sum(o["n_frames"] for o in exported) / elapsed, 1) if elapsed else 0.0,
               "lists": [p.name for p in lists], "report": str(root / REPORT_NAME)}
    failures = [{"item": o.get("path") or o["frame_dir"] or o.get("video_id", ""), "error": o["error"]}
                for o in failed]
    publish_outcome("export", summary, failures, str(root), "Rawframes export", "not exported")
    return {**summary, "failures": failures}


def _store_export(work_dir: str, root: Path, config: ExportConfig, show_progress: bool) -> dict[str, Any]:
    started = time.perf_counter()
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    try:
        records = store.records(complete_only=True)  # official split k's labels and splits (the manifest's)
    except (ManifestError, FlowStoreError):
        if config.split_index != 1:
            raise
        # A dataset without official splits (or a store without a manifest): its one split is "split 1".
        store = store.for_split(None)
        records = store.records(complete_only=True)
    videos, unsafe = with_frame_dirs([{"video_id": r.video_id, "label": r.label, "split": r.split,
                                        "source_size": r.source_size, "source_mtime": r.source_mtime}
                                       for r in records])
    check_export_settings(root, {"source": "flow", "store_fingerprint": store.fingerprint, "step": store.step,
                                 "bound_px": config.bound_px, "jpeg_quality": config.jpeg_quality})
    done = finished_videos(root)
    # A video re-extracted since (its source changed) is exported again.
    todo = [v for v in videos if any(done.get(v["frame_dir"], {}).get(k) != v[k]
                                     for k in ("video_id", "source_size", "source_mtime"))]
    get_run_logger().info("store %s: %d complete videos, %d already exported, %d to export",
                          store.url, len(videos), len(videos) - len(todo), len(todo))
    frames = {r.video_id: r.n_frames for r in records}
    batches = batches_by_work(todo, lambda v: frames[v["video_id"]], config.frames_per_task)
    futures = {export_videos.with_options(retries=config.retries, retry_delay_seconds=1).submit(
        store.url, batch, str(root), config.bound_px, config.jpeg_quality,
        batch[0]["video_id"] + (f"+{len(batch) - 1}" if len(batch) > 1 else ""), config.overwrite): batch
        for batch in batches}
    outcomes = gather_batches(futures, "exporting rawframes", show_progress, lambda batch, exc: [
        {**v, "status": "failed", "error": f"task crashed: {exc!r}", "n_frames": 0, "n_flows": 0, "n_clipped": 0}
        for v in batch])
    classes = sorted({v["label"] for v in videos})
    return _finish(root, config, unsafe + outcomes, classes, started,
                   {"source": "flow", "store": store.url, "fingerprint": store.fingerprint})


def _image_paths(images: list[str]) -> list[tuple[Path, str]]:
    """(image, label) for files and folders of images: label = the first sub-folder under a given folder,
    else 'stills'."""
    out = []
    for item in images:
        path = Path(item).expanduser()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
                rel = file.relative_to(path)
                out.append((file, rel.parts[0] if len(rel.parts) > 1 else "stills"))
        else:
            out.append((path, "stills"))
    return out


def _hallucinated_export(work_dir: str | None, root: Path, config: ExportConfig, images: list[str] | None,
                         show_progress: bool) -> dict[str, Any]:
    from im2flow_tasks.models import load_generator
    from im2flow_tasks.train_data import resolve_device

    started = time.perf_counter()
    generator = load_generator(config.model, work_dir, config.mlflow_tracking_uri)
    device = resolve_device(config.device)
    generator = generator.to(device)
    settings: dict[str, Any] = {"source": "hallucinated", "model": config.model or "registry alias",
                                "input_size": generator.config.input_size, "bound_px": config.bound_px,
                                "jpeg_quality": config.jpeg_quality}
    if images:
        pairs = _image_paths(images)
        videos, unsafe = with_frame_dirs([{"video_id": f"{label}/{path.stem}", "label": label, "split": "test",
                                            "path": str(path)} for path, label in pairs])
        store = None
    else:
        if work_dir is None:
            raise ValueError("exporting a split's hallucinated flow needs --work-dir (its flow store)")
        store = open_flow_store(work_dir, config.store_fingerprint)
        settings["store_fingerprint"] = store.fingerprint
        videos, unsafe = with_frame_dirs([{"video_id": r.video_id, "label": r.label, "split": r.split}
                                           for r in store.records(complete_only=True)
                                           if config.split is None or r.split == config.split])
    check_export_settings(root, settings)
    done = finished_videos(root)
    todo = [v for v in videos if done.get(v["frame_dir"], {}).get("video_id") != v["video_id"]]
    outcomes = list(unsafe)
    with RunProgress(len(todo), "exporting hallucinated flow", show_progress) as progress:
        for video in todo:
            record = {k: video[k] for k in ("video_id", "label", "split", "frame_dir", "path") if k in video}
            problem = "cannot read as an image"
            if store is None:
                rgb, problem = read_rgb_image_checked(video["path"])
                frames = [] if rgb is None else [rgb]
            else:
                frames = list(store.iter_rgb(video["video_id"]))
            if not frames:
                outcomes.append({**record, "status": "failed", "error": problem, "n_frames": 0,
                                 "n_flows": 0, "n_clipped": 0})
            else:
                outcomes.append(export_hallucinated_video(generator, frames, str(root), record, config.bound_px,
                                                          config.jpeg_quality, device, config.batch_size,
                                                          config.overwrite))
            progress.advance()
    classes = sorted({v["label"] for v in videos})
    return _finish(root, config, outcomes, classes, started, {"source": "hallucinated"})


@flow(name="export", flow_run_name=lambda: run_name("export", "out"), log_prints=True, persist_result=False)
def export_flow(work_dir: str | None, out: str, config: ExportConfig = ExportConfig(), images: list[str] | None = None,
                show_progress: bool = False) -> dict[str, Any]:
    """Export to `out` (a local folder) in the rawframes layout (im2flow_storage.rawframes).

    True flow: every complete video of the work dir's flow store, in parallel (Prefect tasks of about
    `frames_per_task` frames). Hallucinated (`config.hallucinated`): G's flow for each frame of the
    store's videos (of `config.split`), or for still `images` (files or folders), batched on G's device.
    Finished videos are skipped on a re-run; annotation lists cover every finished video. Returns a summary.
    """
    root = local_root(out)
    check_export_root(root, config.overwrite)
    root.mkdir(parents=True, exist_ok=True)
    if config.hallucinated:
        return _hallucinated_export(work_dir, root, config, images, show_progress)
    if images:
        raise ValueError("still images can only be exported with hallucinated flow (--hallucinated)")
    if work_dir is None:
        raise ValueError("exporting a flow store needs --work-dir")
    return _store_export(work_dir, root, config, show_progress)
