"""Import one rawframes folder (RGB + flow_x/flow_y JPEGs) into a flow store, checked before it is marked complete."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.rawframe_flow import alignment_errors, count_at_bound, gray_to_flow, misaligned_offset
from im2flow_storage import open_flow_store
from im2flow_storage.rawframes import RawframeFolder, RawframesError, read_image, scan_folder


class ImportProblem(ValueError):
    """A folder that cannot become a store video as it is; the message is the recorded reason."""


def _contiguous(indices: dict[int, str], kind: str) -> list[str]:
    """File names of `kind` in index order; ImportProblem naming the first gap."""
    if not indices:
        return []
    first, last = min(indices), max(indices)
    missing = [i for i in range(first, last + 1) if i not in indices]
    if missing:
        raise ImportProblem(f"{kind}_{missing[0]:05d} missing ({len(missing)} gap(s) in {kind} numbering "
                            f"{first}…{last})")
    return [indices[i] for i in range(first, last + 1)]


def plan_folder(folder: RawframeFolder, step: int = 1) -> dict[str, Any]:
    """The frames and flow pairs of `folder` in order, and how they are numbered; ImportProblem if unusable.

    Flow i (counted from its first index, 0 or 1) pairs with frame i (counted from the first img
    index): denseflow's flow_x_00000 belongs to img_00001. The flow count must be frame count − step.
    """
    files = folder.files
    if not files["img"]:
        raise ImportProblem("no RGB frames (img_*.jpg)")
    for kind, other in (("flow_x", "flow_y"), ("flow_y", "flow_x")):
        missing = sorted(set(files[other]) - set(files[kind]))
        if missing:
            raise ImportProblem(f"{kind}_{missing[0]:05d} missing ({len(missing)} {kind} file(s) absent beside their "
                                f"{other})")
    rgb = _contiguous(files["img"], "img")
    xs, ys = _contiguous(files["flow_x"], "flow_x"), _contiguous(files["flow_y"], "flow_y")
    if not xs:
        raise ImportProblem(f"no flow (flow_x_*/flow_y_*) for {len(rgb)} frames")
    expected = len(rgb) - step
    if len(xs) != expected:
        why = " (denseflow's dropped last batch?)" if len(xs) < expected else ""
        raise ImportProblem(f"{len(xs)} flows for {len(rgb)} frames, expected {expected}{why}")
    numbering = f"img from {min(files['img'])}, flow from {min(files['flow_x'])}"
    return {"rgb": rgb, "flow": list(zip(xs, ys)), "numbering": numbering}


def _read_flow(path: Path, names: tuple[str, str], bound_px: float) -> tuple[np.ndarray, int]:
    x, y = (read_image(path / n, grey=True) for n in names)
    if x.shape != y.shape:
        raise ImportProblem(f"{names[0]} is {x.shape[1]}×{x.shape[0]} but {names[1]} is {y.shape[1]}×{y.shape[0]}")
    return gray_to_flow(x, y, bound_px), count_at_bound(x, y)


def _check_alignment(path: Path, plan: dict[str, Any], bound_px: float, step: int) -> None:
    """ImportProblem if the flow fits the frames clearly better shifted by a frame (mis-numbered folder)."""
    n = len(plan["flow"])
    chosen = sorted({int(i) for i in np.linspace(1, max(1, n - 2), min(4, n))})
    needed = {j for i in chosen for j in (i - 1, i, i + step - 1, i + step, i + step + 1) if 0 <= j < len(plan["rgb"])}
    frames = {j: read_image(path / plan["rgb"][j], grey=False) for j in sorted(needed)}
    flows = {i: _read_flow(path, plan["flow"][i], bound_px)[0] for i in chosen}
    offset = misaligned_offset(alignment_errors(frames, flows, step))
    if offset:
        raise ImportProblem(f"flow is numbered {offset:+d} frame(s) off its RGB: flow k fits img k{offset:+d} "
                            f"better (photometric check; --no-check-alignment to import anyway)")


def import_folder(store_url: str, folder_path: str, frame_dir: str, label: str, split: str, bound_px: float,
                  check_alignment: bool, shard_frames: int) -> dict[str, Any]:
    """Import one video folder into the store; returns an outcome (status complete / failed, reason, counts)."""
    started = time.perf_counter()
    path = Path(folder_path)
    outcome: dict[str, Any] = {"video_id": frame_dir, "path": folder_path, "label": label, "split": split,
                               "status": "failed", "error": "", "n_frames": 0, "n_flows": 0, "at_bound": 0,
                               "numbering": "", "width": 0, "height": 0, "size_bytes": 0, "mtime": 0.0}
    store = open_flow_store(store_url, mode="r+")
    try:
        folder = scan_folder(path, frame_dir)
        outcome.update(size_bytes=folder.size_bytes, mtime=folder.mtime, n_frames=len(folder.files["img"]))
        plan = plan_folder(folder, store.step)
        outcome["numbering"] = plan["numbering"]
        if check_alignment and len(plan["flow"]) >= 3:
            _check_alignment(path, plan, bound_px, store.step)
        writer = store.begin_video(frame_dir, label=label, split=split, source_size=folder.size_bytes,
                                   source_mtime=folder.mtime, shard_frames=shard_frames)
        at_bound = 0
        for t, name in enumerate(plan["rgb"]):
            rgb = read_image(path / name, grey=False)
            flow_image = None
            if t < len(plan["flow"]):
                flow, clipped = _read_flow(path, plan["flow"][t], bound_px)
                if flow.shape[:2] != rgb.shape[:2]:
                    raise ImportProblem(f"{plan['flow'][t][0]} is {flow.shape[1]}×{flow.shape[0]} but {name} is "
                                        f"{rgb.shape[1]}×{rgb.shape[0]}")
                at_bound += clipped
                flow_image = encode_flow(flow)
            writer.append(rgb, flow_image)
        record = writer.finish({"imported_from": folder_path, "numbering": plan["numbering"],
                                "source_at_bound": at_bound})
        outcome.update(status="complete", n_frames=record.n_frames, n_flows=record.n_flows, at_bound=at_bound,
                       width=record.width, height=record.height)
    except (ImportProblem, RawframesError, ValueError, OSError) as exc:
        outcome["error"] = str(exc) if isinstance(exc, (ImportProblem,
                                                        RawframesError)) else f"{type(exc).__name__}: {exc}"
    outcome["seconds"] = time.perf_counter() - started
    return outcome


@task(name="import-videos", task_run_name="import-{name}", persist_result=False)
def import_videos(store_url: str, folders: list[dict[str, Any]], bound_px: float, check_alignment: bool,
                  shard_frames: int, name: str) -> list[dict[str, Any]]:
    """Import `folders` (path, frame_dir, label, split) one after another; one outcome each."""
    return [import_folder(store_url, f["path"], f["frame_dir"], f["label"], f["split"], bound_px, check_alignment,
                          shard_frames) for f in folders]
