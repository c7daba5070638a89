"""Hallucinated flow for still images with a trained G (`im2flow predict`), batched, with a report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.flow_viz import flow_image_to_color
from im2flow_core.unet import UNetGenerator
from im2flow_storage.flow_io import write_flo
from im2flow_storage.images import read_rgb_image_checked, write_rgb_image
from im2flow_storage.paths import safe_child
from im2flow_storage.reports import csv_text, write_report_files
from im2flow_tasks.potential import predict_with_potential
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.train_data import resolve_device


def output_stems(paths: list[str]) -> list[str]:
    """Where each image's outputs go, relative to the output folder and without a suffix.

    Each image keeps its path below the deepest folder all inputs share (`a/x.png`, `b/x.png` →
    `a/x`, `b/x`), so same-named frames of different videos never overwrite each other; files that
    differ only in their suffix keep it (`x_png`, `x_jpg`).
    """
    if not paths:
        return []
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    relative = [os.path.relpath(p, root) for p in absolute]
    split = [os.path.splitext(r) for r in relative]
    files_of: dict[str, set[str]] = {}
    for (stem, _), rel in zip(split, relative):
        files_of.setdefault(stem, set()).add(rel)
    return [stem if len(files_of[stem]) == 1 else f"{stem}_{suffix.lstrip('.')}" for stem, suffix in split]


OWNED_RECORD = ".im2flow-predict-outputs.txt"
"""In the output folder: every file predict wrote there, one path (relative) a line, written before the file."""


class OutputConflictError(ValueError):
    """Predict would replace a file it did not write (an input, or someone's file); the message names them."""


def output_files(stem: str, flow_format: str) -> list[str]:
    """The files one image's outputs occupy, relative to the output folder."""
    return [f"{stem}_flowimage.npy", f"{stem}_flow.{flow_format}", f"{stem}_flow.png"]


def check_outputs(paths: list[str], stems: list[str], out: Path, flow_format: str) -> set[str]:
    """The relative outputs predict owns in `out`; OutputConflictError, before any work, if one of the planned
    outputs (or `predictions.csv`) is an input image or an existing file predict did not write there."""
    record = out / OWNED_RECORD
    owned = set(record.read_text(encoding="utf-8").splitlines()) if record.is_file() else set()
    inputs = {os.path.realpath(p) for p in paths}
    conflicts = []
    planned = [f for stem in stems for f in output_files(stem, flow_format)] + ["predictions.csv"]
    for relative in planned:
        target = safe_child(out, relative, what="output")  # stems lie below the inputs' common folder
        if os.path.realpath(target) in inputs:
            conflicts.append(f"{target} (an input image)")
        elif (target.exists() or target.is_symlink()) and relative not in owned:
            conflicts.append(f"{target} (not written by im2flow predict)")
    if conflicts:
        more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
        raise OutputConflictError(f"predict would replace {', '.join(conflicts[:3])}{more}; nothing was written: "
                                  "choose another --out")
    return owned


def _claim(out: Path, owned: set[str], files: list[str]) -> None:
    """Record `files` as predict's own before writing them (so a rerun may replace them)."""
    new = [f for f in files if f not in owned]
    if new:
        with open(out / OWNED_RECORD, "a", encoding="utf-8") as record:
            record.write("".join(f + "\n" for f in new))
        owned.update(new)


def predict_images(paths: list[str], generator: UNetGenerator, out_dir: str | Path,
                   flow_format: Literal["npy", "flo"] = "npy", device: str = "auto",
                   batch_size: int = 16, show_progress: bool = False) -> list[dict[str, Any]]:
    """For each image: `<stem>_flowimage.npy` (H, W, 3) float32 (sin θ, cos θ, M px), the decoded
    (u, v) as `<stem>_flow.npy` or `.flo`, and `<stem>_flow.png` (colour wheel), where `<stem>` is
    the image's path below the folder all inputs share (`output_stems`). Returns one row per image
    with its motion potential (px; `im2flow_tasks.potential.predict_with_potential`), or the error if
    unreadable, and writes those rows to `predictions.csv` in `out_dir`. Images go through G
    `batch_size` at a time, read as they are needed; `show_progress`: a terminal bar. Outputs never
    replace a file predict did not write (an input, a user's file): OutputConflictError before any work.
    """
    out = Path(out_dir)
    stems = output_stems(paths)
    owned = check_outputs(paths, stems, out, flow_format)
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    generator = generator.to(torch_device)
    rows: list[dict[str, Any]] = []
    with RunProgress(len(paths), "predicting flow", show_progress) as progress:
        for start in range(0, len(paths), batch_size):
            chunk = [(path, stem, *read_rgb_image_checked(path))
                     for path, stem in zip(paths[start : start + batch_size], stems[start : start + batch_size])]
            readable = [(path, rgb) for path, _, rgb, _ in chunk if rgb is not None]
            images, potentials = predict_with_potential(generator, [rgb for _, rgb in readable], torch_device) \
                if readable else ([], [])
            results = {path: (image, potential) for (path, _), image, potential in zip(readable, images, potentials)}
            for path, stem, rgb, problem in chunk:
                if rgb is None:
                    rows.append({"image": str(path), "output": "", "height": "", "width": "",
                                 "motion_potential_px": "", "error": problem})
                    continue
                image, potential = results[path]
                _claim(out, owned, output_files(stem, flow_format))
                (out / stem).parent.mkdir(parents=True, exist_ok=True)
                np.save(out / f"{stem}_flowimage.npy", image)
                flow = decode_flow(image)
                if flow_format == "flo":
                    write_flo(out / f"{stem}_flow.flo", flow)
                else:
                    np.save(out / f"{stem}_flow.npy", flow)
                write_rgb_image(out / f"{stem}_flow.png", flow_image_to_color(image))
                rows.append({"image": str(path), "output": stem, "height": rgb.shape[0], "width": rgb.shape[1],
                             "motion_potential_px": round(potential, 4), "error": ""})
            progress.advance(len(chunk))
    if rows:
        _claim(out, owned, ["predictions.csv"])
        write_report_files(str(out), {"predictions.csv": csv_text(rows)})
    return rows
