"""Finding the videos of a dataset and their labels and splits, for each supported layout.

Layouts:
- `folders`: `ROOT/<label>/**/<video>`; split by a deterministic stratified hash (no split files).
- `ucf101`: class folders plus `ucfTrainTestlist/` (`classInd.txt`, `trainlist0N.txt`, `testlist0N.txt`).
- `hmdb51`: class folders plus `<label>_test_splitN.txt` files (codes 1 = train, 2 = test, 0 = unused).
- `list`: a CSV or Parquet file with columns `path,label[,split]` (paths relative to the file's folder).
`auto` picks `list` for a file, `ucf101` / `hmdb51` when their split files exist, else `folders`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from im2flow_core.splits import stratified_split
from im2flow_core.video import VIDEO_EXTENSIONS

SPLITS = ("train", "test", "unused")


class DatasetLayout(str, Enum):
    """How a dataset root is organised."""

    auto = "auto"
    folders = "folders"
    ucf101 = "ucf101"
    hmdb51 = "hmdb51"
    list = "list"


class DatasetError(Exception):
    """The dataset root or its split files are unusable; the message says which file and why."""


@dataclass(frozen=True)
class DatasetEntry:
    """One video of a dataset: a unique id, its path, its label and its split.

    `official_splits` holds, for datasets with official splits (UCF-101, HMDB-51), the video's part
    in each of them, "" where that split's files are missing: `("train", "test", "train")` means
    train in split 1, test in 2, train in 3. `split` is the part in the split chosen at ingest.
    """

    video_id: str
    path: str
    label: str
    split: str
    official_splits: tuple[str, ...] = ()


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def _video_id(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return printable(rel.with_suffix("").as_posix())


def _class_videos(root: Path) -> list[tuple[Path, str]]:
    """(path, label) of every video under ROOT/<label>/ (symlinks and broken files included)."""
    out: list[tuple[Path, str]] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and not d.lower().endswith(VIDEO_EXTENSIONS))
            names = filenames + [d for d in os.listdir(dirpath) if d.lower().endswith(VIDEO_EXTENSIONS)
                                 and os.path.isdir(os.path.join(dirpath, d))]
            out.extend((Path(dirpath) / n, printable(class_dir.name)) for n in sorted(set(names))
                       if _is_video(Path(n)))
    return out


def _find_ucf_lists(root: Path) -> Path | None:
    for candidate in (root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if (candidate / "classInd.txt").is_file():
            return candidate
    return None


def _find_hmdb_splits(root: Path, split_index: int, recursive: bool = True) -> list[Path]:
    """HMDB-51 split files inside `root` (anywhere below it, or only at its top), or beside it (parent or sibling)."""
    pattern = f"*_test_split{split_index}.txt"
    return sorted(root.rglob(pattern) if recursive else root.glob(pattern)) or sorted([*root.parent.glob(pattern),
                                                                                       *root.parent.glob(f"*/{pattern}")])


def detect_layout_with_evidence(root: Path) -> tuple[DatasetLayout, str]:
    """The layout of `root` (see the module docstring) and the evidence it was chosen on, in words.

    HMDB-51 split files count only when they are named after class folders of `root` (a stray
    `*_test_split1.txt` beside an unrelated dataset would otherwise mark every video unused).
    """
    if root.is_file():
        return DatasetLayout.list, f"{root} is a file"
    lists = _find_ucf_lists(root)
    if lists is not None:
        return DatasetLayout.ucf101, f"UCF-101 split lists in {lists}"
    classes = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    suffix = "_test_split1.txt"
    matching = [f for f in _find_hmdb_splits(root, 1) if f.name[: -len(suffix)] in classes]
    if matching:
        return DatasetLayout.hmdb51, (f"{len(matching)} HMDB-51 split files named after class folders, e.g. "
                                      f"{matching[0]}")
    return DatasetLayout.folders, "no UCF-101 or HMDB-51 split files for its class folders"


def detect_layout(root: Path) -> DatasetLayout:
    """The layout of `root` (see the module docstring and `detect_layout_with_evidence`)."""
    return detect_layout_with_evidence(root)[0]


def split_files_layout(root: Path, split_index: int = 1) -> DatasetLayout:
    """`ucf101` / `hmdb51` if their split files lie in `root` or beside it, else `folders`.

    Unlike `detect_layout` it does not search below `root` (a frame-folder root holds millions of files).
    """
    if _find_ucf_lists(root) is not None:
        return DatasetLayout.ucf101
    if _find_hmdb_splits(root, split_index, recursive=False):
        return DatasetLayout.hmdb51
    return DatasetLayout.folders


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read split file {path}: {exc}") from exc


def _ucf_split_of(root: Path, split_index: int) -> dict[str, str]:
    """UCF-101's split files near `root`: video id (`Class/v_Class_gNN_cMM`) → train / test."""
    lists = _find_ucf_lists(root)
    if lists is None:
        raise DatasetError(f"{root} has no ucfTrainTestlist/ folder with UCF-101 split files")
    test_file, train_file = lists / f"testlist0{split_index}.txt", lists / f"trainlist0{split_index}.txt"
    for f in (test_file, train_file):
        if not f.is_file():
            raise DatasetError(f"UCF-101 split {split_index} needs {f}, which does not exist")
    # Entries are "Class/v_Class_gNN_cMM.avi [label_index]"; match on the id without extension.
    split_of = {Path(line.split()[0]).with_suffix("").as_posix(): "test" for line in _read_lines(test_file)}
    split_of.update({Path(line.split()[0]).with_suffix("").as_posix(): "train" for line in _read_lines(train_file)})
    return split_of


OFFICIAL_SPLITS = (1, 2, 3)
"""UCF-101 and HMDB-51 each define three train/test splits; results are reported per split and as their mean."""


def _available(read: Callable[[int], dict[Any, str]]) -> list[dict[Any, str] | None]:
    """`read(k)` for each official split k, None where its files are missing or unreadable."""
    out: list[dict[Any, str] | None] = []
    for k in OFFICIAL_SPLITS:
        try:
            out.append(read(k))
        except DatasetError:
            out.append(None)
    return out


def _scan_ucf101(root: Path, split_index: int) -> list[DatasetEntry]:
    split_of = _ucf_split_of(root, split_index)
    every = _available(lambda k: _ucf_split_of(root, k))
    entries = []
    for path, label in _class_videos(root):
        video_id = _video_id(path, root)
        official = tuple("" if s is None else s.get(video_id, "unused") for s in every)
        entries.append(DatasetEntry(video_id, str(path), label, split_of.get(video_id, "unused"), official))
    return entries


def _hmdb_codes(root: Path, split_index: int, recursive: bool = True) -> dict[tuple[str, str], str]:
    """HMDB-51's split files near `root`: (label, video file name) → train / test / unused."""
    codes: dict[tuple[str, str], str] = {}
    for split_file in _find_hmdb_splits(root, split_index, recursive):
        label = split_file.name[: -len(f"_test_split{split_index}.txt")]
        for line in _read_lines(split_file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetError(f"{split_file}: expected '<video> <0|1|2>', got {line!r}")
            codes[(label, parts[0])] = {"0": "unused", "1": "train", "2": "test"}[parts[1]]
    if not codes:
        raise DatasetError(f"no HMDB-51 split files *_test_split{split_index}.txt near {root}")
    return codes


def _scan_hmdb51(root: Path, split_index: int) -> list[DatasetEntry]:
    codes = _hmdb_codes(root, split_index)
    every = _available(lambda k: _hmdb_codes(root, k))
    return [DatasetEntry(_video_id(p, root), str(p), label, codes.get((label, p.name), "unused"),
                         tuple("" if c is None else c.get((label, p.name), "unused") for c in every))
            for p, label in _class_videos(root)]


def assign_splits(root: str | Path, videos: list[tuple[str, str]], layout: DatasetLayout | str = DatasetLayout.auto,
                  split_index: int = 1, test_fraction: float = 0.3, seed: int = 0) -> dict[str, str]:
    """Splits of videos given as (video id `<class>/<name>`, label) rather than found as files (e.g. frame folders).

    `ucf101` / `hmdb51` read the official split files near `root` (HMDB's name a video by its file,
    matched here without the extension); `folders` (and `auto` without split files) split by
    group, stratified, as ingest does. Videos the split files do not name are "unused".
    """
    root = Path(root).expanduser().absolute()
    layout = DatasetLayout(layout)
    if layout is DatasetLayout.auto:
        layout = detect_layout(root)
    if layout is DatasetLayout.ucf101:
        split_of = _ucf_split_of(root, split_index)
        return {vid: split_of.get(vid, "unused") for vid, _ in videos}
    if layout is DatasetLayout.hmdb51:
        codes = {(label, Path(name).stem): split for (label, name), split in _hmdb_codes(root, split_index,
                                                                                         recursive=False).items()}
        return {vid: codes.get((label, vid.rsplit("/", 1)[-1]), "unused") for vid, label in videos}
    if layout is DatasetLayout.list:
        raise DatasetError("layout 'list' names video files; it cannot assign splits to frame folders")
    return stratified_split([v for v, _ in videos], [lab for _, lab in videos], test_fraction, seed) if videos else {}


def _scan_list(list_file: Path, test_fraction: float, seed: int) -> list[DatasetEntry]:
    base = list_file.parent
    try:
        if list_file.suffix.lower() == ".parquet":
            rows = pq.read_table(list_file).to_pylist()
        else:
            with list_file.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file, reported as such
        raise DatasetError(f"cannot read video list {list_file}: {exc}") from exc
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"video list {list_file} needs columns path,label[,split]")
    entries = []
    for i, row in enumerate(rows, start=2):
        path = Path(str(row["path"]))
        path = path if path.is_absolute() else base / path
        split = str(row.get("split") or "").strip()
        if split and split not in SPLITS:
            raise DatasetError(f"{list_file} row {i}: split must be one of {SPLITS}, got {split!r}")
        entries.append(DatasetEntry(_video_id(path, base), str(path), str(row["label"]), split))
    missing = [e for e in entries if not e.split]
    if missing:
        assigned = stratified_split([e.video_id for e in missing], [e.label for e in missing], test_fraction, seed)
        entries = [e if e.split else DatasetEntry(e.video_id, e.path, e.label, assigned[e.video_id]) for e in entries]
    return entries


def scan_dataset(root: str | Path, layout: DatasetLayout | str = DatasetLayout.auto, split_index: int = 1,
                 test_fraction: float = 0.3, seed: int = 0) -> list[DatasetEntry]:
    """Every video of the dataset at `root` with its id, label and split, sorted by id.

    `split_index` chooses the official split (1–3) of UCF-101/HMDB-51; datasets without split
    files get a deterministic stratified split (`test_fraction`, `seed`) by video group.
    Raises DatasetError for a missing root, no videos at all (an empty or unmounted folder),
    split files that name none of the videos, unreadable split files or duplicate ids.
    """
    return scan_dataset_with_evidence(root, layout, split_index, test_fraction, seed)[0]


def scan_dataset_with_evidence(root: str | Path, layout: DatasetLayout | str = DatasetLayout.auto,
                               split_index: int = 1, test_fraction: float = 0.3,
                               seed: int = 0) -> tuple[list[DatasetEntry], str]:
    """`scan_dataset` and, in words, the layout used and why (the evidence auto-detection found)."""
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise DatasetError(f"dataset root {root} does not exist")
    layout = DatasetLayout(layout)
    evidence = "as given"
    if layout is DatasetLayout.auto:
        layout, evidence = detect_layout_with_evidence(root)
    entries = _scan(root, layout, split_index, test_fraction, seed)
    described = f"layout {layout.value} ({evidence})"
    if not entries:
        raise DatasetError(f"no videos found in {root} ({described}): is the folder empty or not mounted?")
    if layout in (DatasetLayout.ucf101, DatasetLayout.hmdb51) and all(e.split == "unused" for e in entries):
        raise DatasetError(f"the split files of {described} name none of the {len(entries)} videos in {root}: "
                           "pass --layout folders (or the right root)")
    return entries, described


def printable(text: str) -> str:
    """`text` unchanged if it is valid UTF-8, else with its undecodable bytes written as \\xNN."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def check_official_splits(entries: list[DatasetEntry], splits: tuple[int, ...]) -> None:
    """DatasetError unless every video has official splits `splits` (UCF-101 / HMDB-51 with their split files)."""
    missing = [k for k in splits if not entries or any(len(e.official_splits) < k or not e.official_splits[k - 1]
                                                       for e in entries)]
    if missing:
        raise DatasetError(f"official split(s) {missing} are not defined for this dataset: only UCF-101 and HMDB-51 "
                           "layouts with their split files (testlist0k.txt, *_test_splitk.txt) have splits 1-3")


def _scan(root: Path, layout: DatasetLayout, split_index: int, test_fraction: float,
          seed: int) -> list[DatasetEntry]:
    if layout is DatasetLayout.list:
        if not root.is_file():
            raise DatasetError(f"layout 'list' needs a CSV or Parquet file, got the folder {root}")
        entries = _scan_list(root, test_fraction, seed)
    elif not root.is_dir():
        raise DatasetError(f"layout {layout.value!r} needs a folder, got the file {root}")
    elif layout is DatasetLayout.ucf101:
        if _find_ucf_lists(root) is None:
            raise DatasetError(f"no ucfTrainTestlist/classInd.txt in or beside {root}")
        entries = _scan_ucf101(root, split_index)
    elif layout is DatasetLayout.hmdb51:
        entries = _scan_hmdb51(root, split_index)
    else:
        found = _class_videos(root)
        ids = [_video_id(p, root) for p, _ in found]
        splits = stratified_split(ids, [lab for _, lab in found], test_fraction, seed) if found else {}
        entries = [DatasetEntry(i, str(p), lab, splits[i]) for i, (p, lab) in zip(ids, found)]
    # Ids and labels of file names that are not UTF-8 carry \xNN escapes (`printable`); the path stays as
    # found, so ingest can name the file and mark it unreadable.
    seen: dict[str, str] = {}
    for e in entries:
        if e.video_id in seen:
            raise DatasetError(f"two videos share the id {e.video_id!r}: {seen[e.video_id]} and {e.path}")
        seen[e.video_id] = e.path
    return sorted(entries, key=lambda e: e.video_id)
