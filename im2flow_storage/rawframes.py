"""The "rawframes" layout of mmaction2 / TSN / denseflow: one folder of JPEGs per video, plus annotation lists.

Layout written by `im2flow export` (a local folder ROOT; mmaction2's `RawframeDataset` defaults):
- `ROOT/<class>/<video>/img_00001.jpg …`   RGB frames, numbered from 1 (`start_index=1`, `img_{:05}.jpg`).
- `ROOT/<class>/<video>/flow_x_00001.jpg …`, `flow_y_00001.jpg …`  grey flow images (u, v), numbered
  from 1 like the RGB: flow k goes from img k to img k + K (`filename_tmpl='flow_{}_{:05d}.jpg'`).
  A video of T frames has T − K flows (K = the store's step, 1 by default).
- `ROOT/classInd.txt`  "1 <class>" per line (1-based, as UCF-101's); list labels are 0-based.
- `ROOT/<name>_{train,val}_split_<k>_rawframes.txt`  `frame_dir total_frames label` (RGB counts),
  as mmaction2's `tools/data/build_file_list.py` names them; `…_rawframes_flow.txt` the same with
  the flow counts, for a Flow-modality dataset (which must not sample past the last flow).
- `ROOT/.im2flow/done/<key>.json`  one record per finished video, written after its folder is in
  place: a video without one is unfinished and redone. `ROOT/.im2flow/export.json` the settings.
- `ROOT/.im2flow/writing/<key>.json`  written just before a video's folder is moved into place and
  removed after its done record: with the done records, the list of folders this export wrote.

A video is written into `<video>.partial/` and renamed into place, so its folder is never seen
half-written under its own name. Every folder name comes from labels and ids (data), so each goes
through `paths.safe_child` (no `..`, no separators, inside ROOT), and two videos whose folders a
case-insensitive disk would merge are refused. Export replaces only a folder its own records say it
wrote; anything else under ROOT is left alone (the video fails, naming the folder). Reading
(`scan_rawframes`) accepts flow numbered from 0 or 1
(denseflow numbers flow from 0 and RGB from 1) and one or two folder levels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from im2flow_storage.paths import UnsafePathError, check_name, local_path, safe_child

RGB_TEMPLATE = "img_{:05d}.jpg"
FLOW_TEMPLATE = "flow_{}_{:05d}.jpg"
START_INDEX = 1
CLASS_INDEX_NAME = "classInd.txt"
STATE_DIR = ".im2flow"
_FRAME_FILE = re.compile(r"^(img|flow_x|flow_y)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


class RawframesError(Exception):
    """A rawframes folder cannot be written or read; the message names the path and the reason."""


def local_root(url: str) -> Path:
    """`url` as a local folder (rawframes are read by tools from local disk); RawframesError for other URLs."""
    path = local_path(url)
    if path is None:
        raise RawframesError(f"rawframes folders must be on local (or mounted) disk, got {url}")
    return Path(path)


def frame_dir_of(video_id: str, label: str) -> str:
    """`<class>/<video>` for a video: its id when that is already `<label>/<name>`, else `<label>/<id with / → __>`.

    Whitespace becomes `_`: annotation lists are space-separated. UnsafePathError (naming the video)
    when the label or the name is not a plain folder name (`..`, separators, …): both are data.
    """
    parts = video_id.split("/")
    name = parts[1] if len(parts) == 2 and parts[0] == label else "__".join(parts)
    clean = [re.sub(r"\s+", "_", p) for p in (label or "unlabelled", name)]
    check_name(clean[0], f"label of video {video_id!r}")
    check_name(clean[1], f"folder name of video {video_id!r}")
    return "/".join(clean)


def _state_key(frame_dir: str) -> str:
    return frame_dir.replace("/", "%2F") + ".json"


def write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    """Write `(H, W, 3) uint8` RGB or `(H, W) uint8` grey as a JPEG of `quality` (1–100)."""
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RawframesError(f"cannot encode {path} as JPEG")
    path.write_bytes(data.tobytes())


def read_image(path: Path, grey: bool) -> np.ndarray:
    """`(H, W, 3) uint8` RGB or `(H, W) uint8` grey from an image file; RawframesError if unreadable."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data,
                         cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise RawframesError(f"{path.name}: missing or not a readable image")
    return image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class RawframeVideoWriter:
    """Writes one video's folder under ROOT: frames into `<frame_dir>.partial/`, then `commit` renames it.

    Use as a context manager; leaving it without `commit` (an error) removes the partial folder.
    An existing `<frame_dir>` is replaced only when this export's records say it wrote it (or
    `overwrite`); otherwise RawframesError before anything is written.
    """

    def __init__(self, root: Path, frame_dir: str, quality: int = 95, overwrite: bool = False) -> None:
        self.root, self.frame_dir, self.quality = root, frame_dir, quality
        self.final = safe_child(root, frame_dir, what="rawframes folder")
        self.partial = safe_child(root, frame_dir + ".partial", what="rawframes folder")
        done = root / STATE_DIR / "done" / _state_key(frame_dir)
        self._writing = root / STATE_DIR / "writing" / _state_key(frame_dir)
        owned = overwrite or done.is_file() or self._writing.is_file()
        for path in (self.final, self.partial):  # the writing record precedes any folder of ours
            if path.exists() and not owned:
                raise RawframesError(f"{path} exists and was not written by this export: left alone "
                                     "(remove it, export elsewhere, or pass --overwrite)")
        self._writing.parent.mkdir(parents=True, exist_ok=True)
        self._writing.write_text(json.dumps({"frame_dir": frame_dir}))  # from here on, the folder is ours
        done.unlink(missing_ok=True)  # an earlier record no longer describes what is being written
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        self._done = done
        self._committed = False

    def write_rgb(self, index: int, rgb: np.ndarray) -> None:
        """RGB frame `(H, W, 3) uint8` as img_<index> (1-based)."""
        write_jpeg(self.partial / RGB_TEMPLATE.format(index), rgb, self.quality)

    def write_flow(self, index: int, x: np.ndarray, y: np.ndarray) -> None:
        """Grey flow images `(H, W) uint8` as flow_x_<index>, flow_y_<index> (1-based)."""
        write_jpeg(self.partial / FLOW_TEMPLATE.format("x", index), x, self.quality)
        write_jpeg(self.partial / FLOW_TEMPLATE.format("y", index), y, self.quality)

    def commit(self, record: Mapping[str, Any]) -> None:
        """Move the folder into place, then write its record: only then is the video finished."""
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)
        self._done.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._done.with_suffix(".tmp")
        tmp.write_text(json.dumps({"frame_dir": self.frame_dir, **record}, default=str))
        os.replace(tmp, self._done)
        self._writing.unlink(missing_ok=True)
        self._committed = True

    def __enter__(self) -> RawframeVideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._committed:
            shutil.rmtree(self.partial, ignore_errors=True)
            if not self.final.exists():
                self._writing.unlink(missing_ok=True)


def finished_videos(root: Path) -> dict[str, dict[str, Any]]:
    """Records of the finished videos under ROOT (frame_dir → record): one listing, one small read each."""
    folder = root / STATE_DIR / "done"
    if not folder.is_dir():
        return {}
    out = {}
    for entry in os.scandir(folder):
        if entry.name.endswith(".json"):
            record = json.loads(Path(entry.path).read_text())
            try:
                path = safe_child(root, str(record.get("frame_dir", "")), what="rawframes folder")
            except UnsafePathError:
                continue  # not a record this export wrote: its folder is never trusted or listed
            if path.is_dir():
                out[record["frame_dir"]] = record
    return out


def check_export_root(root: Path, overwrite: bool) -> None:
    """Refuse a non-empty ROOT that holds no export state of ours (unless `overwrite`): it is someone's folder."""
    if overwrite or (root / STATE_DIR / "export.json").is_file() or not root.exists():
        return
    if not root.is_dir():
        raise RawframesError(f"{root} is not a folder")
    if any(os.scandir(root)):
        raise RawframesError(f"{root} is not empty and holds no im2flow export: choose an empty or new folder "
                             "(or pass --overwrite to export into it; folders of the same names are replaced)")


def check_export_settings(root: Path, settings: Mapping[str, Any]) -> None:
    """Record the export's settings in ROOT, or check they match the ones an earlier run recorded."""
    path = root / STATE_DIR / "export.json"
    wanted = json.loads(json.dumps(dict(settings), default=str))
    if path.is_file():
        found = json.loads(path.read_text())
        if found != wanted:
            differ = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise RawframesError(f"{root} holds an export with other settings ({', '.join(differ)}: "
                                 f"{ {k: found.get(k) for k in differ} }); export into another folder")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2))


def write_annotation_lists(root: Path, name: str, split_index: int, videos: Iterable[Mapping[str, Any]],
                           classes: list[str]) -> list[Path]:
    """classInd.txt and the train/val lists (RGB and flow counts) of `videos` (records with frame_dir,
    label, split, n_frames, n_flows); split "train" → train, "test" → val, others left out. Returns the paths.
    """
    index = {c: i for i, c in enumerate(classes)}
    lines: dict[str, list[str]] = {}
    for v in sorted(videos, key=lambda v: v["frame_dir"]):
        subset = {"train": "train", "test": "val"}.get(v["split"])
        if subset is None:
            continue
        for suffix, count in (("", v["n_frames"]), ("_flow", v["n_flows"])):
            lines.setdefault(f"{name}_{subset}_split_{split_index}_rawframes{suffix}.txt", []).append(
                f"{v['frame_dir']} {count} {index[v['label']]}")
    written = [root / CLASS_INDEX_NAME]
    written[0].write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for subset in ("train", "val"):
        for suffix in ("", "_flow"):
            path = root / f"{name}_{subset}_split_{split_index}_rawframes{suffix}.txt"
            path.write_text("".join(line + "\n" for line in lines.get(path.name, [])))
            written.append(path)
    return written


@dataclass
class RawframeFolder:
    """One video folder found under a rawframes root: its files by kind and index."""

    frame_dir: str
    path: Path
    files: dict[str, dict[int, str]] = field(default_factory=lambda: {"img": {}, "flow_x": {}, "flow_y": {}})
    size_bytes: int = 0
    mtime: float = 0.0


def _folder(path: Path, frame_dir: str) -> RawframeFolder | None:
    folder = RawframeFolder(frame_dir, path)
    for entry in os.scandir(path):
        match = _FRAME_FILE.match(entry.name)
        if match and entry.is_file():
            folder.files[match.group(1).lower()][int(match.group(2))] = entry.name
            stat = entry.stat()
            folder.size_bytes += stat.st_size
            folder.mtime = max(folder.mtime, stat.st_mtime)
    return folder if any(folder.files.values()) else None


def scan_folder(path: Path, frame_dir: str) -> RawframeFolder:
    """The frame files of one video folder (possibly none); RawframesError if it is not a readable folder."""
    try:
        return _folder(path, frame_dir) or RawframeFolder(frame_dir, path)
    except OSError as exc:
        raise RawframesError(f"cannot list {path}: {exc}") from exc


def scan_rawframes(root: Path) -> list[RawframeFolder]:
    """Video folders under ROOT, one level (`ROOT/<video>/`) or two (`ROOT/<class>/<video>/`), sorted.

    A folder is a video folder if it holds img_/flow_x_/flow_y_ files; hidden folders and `.partial`
    ones are skipped.
    """
    if not root.is_dir():
        raise RawframesError(f"{root} is not a folder")
    found = []
    for first in sorted(os.scandir(root), key=lambda e: e.name):
        if not first.is_dir() or first.name.startswith(".") or first.name.endswith(".partial"):
            continue
        own = _folder(Path(first.path), first.name)
        if own is not None:
            found.append(own)
            continue
        for second in sorted(os.scandir(first.path), key=lambda e: e.name):
            if second.is_dir() and not second.name.startswith(".") and not second.name.endswith(".partial"):
                video = _folder(Path(second.path), f"{first.name}/{second.name}")
                if video is not None:
                    found.append(video)
    return found


def _read_text(path: Path) -> str:
    """The text of a list file; RawframesError naming it when it cannot be read or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RawframesError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise RawframesError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_annotation_lists(root: Path, split_index: int) -> tuple[dict[str, tuple[int, str]], list[str]] | None:
    """mmaction2 lists of split `split_index` in ROOT or its parent: (frame_dir → (label index, split), classes).

    Lists `*_train_split_<k>_rawframes.txt` → train and `*_val_split_<k>_rawframes.txt` → test; class
    names from classInd.txt beside them ("1 <class>", 1-based) when present. None if there are no lists.
    """
    for folder in (root, root.parent):
        train = sorted(folder.glob(f"*_train_split_{split_index}_rawframes.txt"))
        val = sorted(folder.glob(f"*_val_split_{split_index}_rawframes.txt"))
        if not train and not val:
            continue
        entries: dict[str, tuple[int, str]] = {}
        for split, files in (("train", train), ("test", val)):
            for path in files:
                for number, line in enumerate(_read_text(path).splitlines(), start=1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) < 3 or not parts[-1].lstrip("-").isdigit():
                        raise RawframesError(f"{path}:{number}: expected 'frame_dir total_frames label', got {line!r}")
                    entries[parts[0].strip("/")] = (int(parts[-1]), split)
        classes: list[str] = []
        class_file = folder / CLASS_INDEX_NAME
        if class_file.is_file():
            pairs = []
            for number, line in enumerate(_read_text(class_file).splitlines(), start=1):
                parts = line.split(maxsplit=1)
                if not parts:
                    continue
                if len(parts) != 2 or not parts[0].isdigit():
                    raise RawframesError(f"{class_file}:{number}: expected '<index> <class name>', got {line!r}")
                pairs.append((int(parts[0]), parts[1].strip()))
            classes = [name for _, name in sorted(pairs)]
        return entries, classes
    return None
