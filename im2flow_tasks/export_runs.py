"""The export stage's work around the per-video writers (`im2flow_tasks.export`): which videos to export, G's
hallucinated flow for frames or still images, and the finished folder's lists, report and summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from im2flow_storage import FlowStoreError, open_flow_store
from im2flow_storage.images import IMAGE_EXTENSIONS, read_rgb_image_checked
from im2flow_storage.manifest import ManifestError
from im2flow_storage.rawframes import check_export_settings, finished_videos, write_annotation_lists
from im2flow_storage.reports import csv_text
from im2flow_tasks.export import export_hallucinated_video, with_frame_dirs
from im2flow_tasks.interop_config import ExportConfig
from im2flow_tasks.models import load_generator_on
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.summaries import ExportSummary, Failure

REPORT_NAME = "im2flow_export_report.csv"
REPORT_COLUMNS = ("frame_dir", "video_id", "label", "split", "status", "error", "n_frames", "n_flows", "n_clipped")


@dataclass(frozen=True)
class StoreExportPlan:
    """A flow store's export: the store, its videos with their folders, the ones with no safe folder name (as
    failed outcomes), those still to export, and each video's frame count."""

    store_url: str
    fingerprint: str
    videos: list[dict[str, Any]]
    unsafe: list[dict[str, Any]]
    todo: list[dict[str, Any]]
    frames: dict[str, int]


@task(name="plan-store-export", task_run_name="plan-store-export", persist_result=False)
def plan_store_export(work_dir: str, root: Path, config: ExportConfig) -> StoreExportPlan:
    """The complete videos of `work_dir`'s flow store (official split `config.split_index`'s labels and splits) and
    which of them `root` does not hold yet (or holds from a source that changed since). RawframesError when
    `root` holds an export of other settings."""
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    try:
        records = store.records(complete_only=True)
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
    todo = [v for v in videos if any(done.get(v["frame_dir"], {}).get(k) != v[k]
                                     for k in ("video_id", "source_size", "source_mtime"))]
    get_run_logger().info("store %s: %d complete videos, %d already exported, %d to export",
                          store.url, len(videos), len(videos) - len(todo), len(todo))
    return StoreExportPlan(store.url, store.fingerprint, videos, unsafe, todo,
                           {r.video_id: r.n_frames for r in records})


def image_videos(images: list[str]) -> list[dict[str, Any]]:
    """One single-frame video per still image of `images` (files, and folders searched recursively): id
    `<label>/<stem>`, label the first sub-folder under a given folder (else `stills`), split `test`."""
    pairs: list[tuple[Path, str]] = []
    for item in images:
        path = Path(item).expanduser()
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
                rel = file.relative_to(path)
                pairs.append((file, rel.parts[0] if len(rel.parts) > 1 else "stills"))
        else:
            pairs.append((path, "stills"))
    return [{"video_id": f"{label}/{path.stem}", "label": label, "split": "test", "path": str(path)}
            for path, label in pairs]


@task(name="export-hallucinated", task_run_name="export-hallucinated", persist_result=False)
def export_hallucinated(work_dir: str | None, root: Path, config: ExportConfig, images: list[str] | None,
                        show_progress: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """G's flow (`config.model`, or the registry alias) for each frame of the flow store's videos (of
    `config.split`), or for still `images`, written as rawframes folders under `root`, batched on G's device;
    folders already finished are skipped. Returns (outcomes, every video's label)."""
    generator, device = load_generator_on(config.model, work_dir, config.mlflow_tracking_uri, config.device)
    settings: dict[str, Any] = {"source": "hallucinated", "model": config.model or "registry alias",
                                "input_size": generator.config.input_size, "bound_px": config.bound_px,
                                "jpeg_quality": config.jpeg_quality}
    store = None
    if images:
        videos, unsafe = with_frame_dirs(image_videos(images))
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
    return outcomes, sorted({v["label"] for v in videos})


@task(name="finish-export", task_run_name="finish-export", persist_result=False)
def finish_export(root: Path, config: ExportConfig, outcomes: list[dict[str, Any]], classes: list[str],
                  started: float, source: str, store: str | None = None,
                  fingerprint: str | None = None) -> ExportSummary:
    """Annotation lists over every finished video under `root` (this run's and earlier runs'), the export report
    (`im2flow_export_report.csv`) and the summary; `started`: `time.perf_counter()` when the export began."""
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
    frames = sum(o["n_frames"] for o in exported)
    return ExportSummary(
        source=source, store=store, fingerprint=fingerprint, out=str(root), videos=len(finished),
        exported_now=len(exported), failed=len(failed), frames=frames, flows=sum(o["n_flows"] for o in exported),
        clipped_values=sum(int(r.get("n_clipped", 0)) for r in finished.values()), seconds=round(elapsed, 2),
        frames_per_s=round(frames / elapsed, 1) if elapsed else 0.0, lists=[p.name for p in lists],
        report=str(root / REPORT_NAME),
        failures=[Failure(item=o.get("path") or o["frame_dir"] or o.get("video_id", ""), error=o["error"])
                  for o in failed])
