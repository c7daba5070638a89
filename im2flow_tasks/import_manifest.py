"""Where an import's folders come from and go: their labels and splits, the store configuration of an
import, and the manifest rows of what was imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from im2flow_storage.datasets import DatasetLayout, assign_splits, split_files_layout
from im2flow_storage.manifest import ManifestError, read_manifest, write_manifest
from im2flow_storage.rawframes import RawframesError, read_annotation_lists, scan_rawframes
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.interop_config import ImportConfig


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


@task(name="label-folders", task_run_name="label-folders", persist_result=False)
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


def manifest_row(outcome: dict[str, Any]) -> dict[str, Any]:
    """The manifest row of one import outcome (status `imported`, or `unreadable` with the reason)."""
    ok = outcome["status"] == "complete"
    return {"video_id": outcome["video_id"], "path": outcome["path"], "label": outcome["label"],
            "split": outcome["split"], "status": "imported" if ok else "unreadable", "error": outcome["error"],
            "warning": outcome.get("numbering", ""), "n_frames": outcome["n_frames"],
            "container_frames": outcome["n_frames"], "fps": 0.0, "width": outcome["width"],
            "height": outcome["height"], "duration_s": 0.0, "codec": "rawframes",
            "size_bytes": outcome["size_bytes"], "mtime": outcome["mtime"]}


@task(name="merge-manifest", task_run_name="merge-manifest", persist_result=False)
def merge_manifest(work_dir: str, outcomes: list[dict[str, Any]]) -> str:
    """Write the manifest with the imported folders' rows (`manifest_row`), replacing rows of the same id in an
    existing manifest; returns its URL."""
    try:
        rows = {r["video_id"]: r for r in read_manifest(work_dir)}
    except ManifestError:
        rows = {}
    rows.update({o["video_id"]: manifest_row(o) for o in outcomes})
    return write_manifest(rows.values(), work_dir)
