"""Work-directory layout and fsspec URL helpers: every path im2flow writes is named here.

A work directory is a local path or any fsspec URL (e.g. s3://bucket/run). Inside it:
- `manifest.parquet`                      the ingest manifest
- `flows/<algorithm>-<fingerprint>.zarr`  one flow store per extraction configuration
- `flows/<algorithm>-<fingerprint>.report.parquet`  the last extraction run's per-video outcome
- `train/<fingerprint>/`                  training checkpoints, exported weights, run record
- `eval/<split>/`, `potential/`, `predictions/`  evaluation reports, rankings, demo predictions
- `recognize/<fingerprint>/`              recognition streams, accuracy tables, confusion matrices
- `pipeline-cache/<stage>-<key>.json`     the pipeline's cached stage summaries (plain JSON, `stage_cache`)
- `mlflow.db`, `mlartifacts/`             the default MLflow store
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

MANIFEST_NAME = "manifest.parquet"
FLOWS_DIR = "flows"


def join(base: str, *parts: str) -> str:
    """Join URL/path parts with '/', keeping the scheme of `base`."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


class UnsafePathError(ValueError):
    """A path built from data (a label, an id, a file name) would leave its root or is not a plain name."""


def check_name(part: str, what: str = "name") -> str:
    """`part` unchanged if it is one plain path component, else UnsafePathError naming `what` and the reason.

    Refused: empty, `.`, `..`, a separator (`/`, `\\`) or NUL inside, a drive (`C:`), control characters.
    """
    if not isinstance(part, str) or not part or part in (".", ".."):
        raise UnsafePathError(f"{what} {part!r} is not a file or folder name")
    bad = [c for c in part if c in "/\\\0" or unicodedata.category(c) == "Cc"]
    if bad:
        raise UnsafePathError(f"{what} {part!r} holds {bad[0]!r}, which may not be part of a name")
    if len(part) >= 2 and part[1] == ":" and part[0].isalpha():
        raise UnsafePathError(f"{what} {part!r} starts with a drive")
    return part


def safe_child(root: str | os.PathLike[str], *parts: str, what: str = "name") -> Path:
    """`root/part/…` built from untrusted `parts` (labels, ids, file names), guaranteed to stay inside `root`.

    The one function every path built from data goes through: each part must pass `check_name`,
    and the resolved path (symbolic links followed) must lie inside the resolved root, else
    UnsafePathError. `parts` may hold `a/b` (split at `/`, each piece checked).
    """
    pieces = [piece for part in parts for piece in str(part).split("/")]
    if any(str(part).startswith(("/", "\\")) for part in parts):
        raise UnsafePathError(f"{what} {'/'.join(map(str, parts))!r} is an absolute path")
    for piece in pieces:
        check_name(piece, what)
    base = Path(root)
    path = base.joinpath(*pieces)
    resolved_root = base.resolve()
    if not path.resolve().is_relative_to(resolved_root) or path.resolve() == resolved_root:
        raise UnsafePathError(f"{what} {'/'.join(pieces)!r} leads outside {base}")
    return path


def collision_key(relative: str) -> str:
    """What two relative paths share when a case-insensitive or normalising filesystem (macOS, Windows)
    would make them one: NFC form, case folded. Writers refuse two items with one key."""
    return unicodedata.normalize("NFC", relative).casefold()


def manifest_url(work_dir: str) -> str:
    """URL of the Parquet manifest in `work_dir`."""
    return join(work_dir, MANIFEST_NAME)


def flows_url(work_dir: str) -> str:
    """URL of the folder that holds the flow stores of `work_dir`."""
    return join(work_dir, FLOWS_DIR)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for `url` and the path within it."""
    return url_to_fs(url)


def local_path(url: str) -> str | None:
    """The local filesystem path of `url` (a plain path or file:// URL), or None for any other fsspec URL."""
    fs, path = filesystem(url)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return path if "file" in protocols or "local" in protocols else None


@contextmanager
def local_copy(url: str) -> Iterator[str]:
    """A local path holding the file at `url`: the path itself if local, else a temporary copy (removed on exit)."""
    path = local_path(url)
    if path is not None:
        yield path
        return
    fs, remote = filesystem(url)
    with tempfile.TemporaryDirectory(prefix="im2flow-fetch-") as tmp:
        target = str(Path(tmp) / Path(remote).name)
        fs.get_file(remote, target)
        yield target


def exists(url: str) -> bool:
    """Whether `url` exists (file or folder)."""
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def ensure_dir(url: str) -> None:
    """Create the folder `url` and its parents (a no-op on object stores)."""
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def split_name(split: str, split_index: int | None = None) -> str:
    """`split` (e.g. "test"), or `split<k>-<split>` for official split k: names folders and runs of one split."""
    return split if split_index is None else f"split{split_index}-{split}"


def eval_url(work_dir: str, split: str, split_index: int | None = None) -> str:
    """Folder of the evaluation report of `split` (of official split `split_index`, if given)."""
    return join(work_dir, "eval", split_name(split, split_index))


def potential_url(work_dir: str, split_index: int | None = None) -> str:
    """Folder of the motion-potential ranking (of official split `split_index`: `potential/split<k>`)."""
    return join(work_dir, "potential") if split_index is None else join(work_dir, "potential", f"split{split_index}")


def predictions_url(work_dir: str) -> str:
    """Folder of the demo's predictions."""
    return join(work_dir, "predictions")


def train_url(work_dir: str, fingerprint: str) -> str:
    """Folder of one training run (checkpoints, exports, run record)."""
    return join(work_dir, "train", fingerprint)


def recognize_url(work_dir: str, fingerprint: str) -> str:
    """Folder of one recognition run (stream checkpoints, scores, accuracy tables, confusion matrices)."""
    return join(work_dir, "recognize", fingerprint)


def pipeline_cache_url(work_dir: str) -> str:
    """Folder of the pipeline's cached stage summaries (JSON records, `im2flow_storage.stage_cache`)."""
    return join(work_dir, "pipeline-cache")


def logs_url(work_dir: str) -> str:
    """Folder of the CLI's log files (every INFO line of a command; the console shows warnings only)."""
    return join(work_dir, "logs")
