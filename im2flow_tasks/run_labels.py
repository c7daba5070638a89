"""Names and keys that tell runs apart in the Prefect and MLflow UIs: short, stable, never random.

A Prefect server is shared by every job that reports to it, and an artifact key is global on it:
a key names a series of versions across all runs. So a summary's key carries its work dir
(`extract-summary-im2flow-demo-3f9a1c`: the folder's name and a digest of its absolute URL, so two
work dirs called the same stay apart), and each version's description says which run and work dir
wrote it. Progress bars are per run and carry no key (they stay on their run's Artifacts tab).
"""

from __future__ import annotations

import hashlib
import os
import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

_NOT_KEY = re.compile(r"[^a-z0-9]+")
GENERIC_FOLDER_NAMES = frozenset({"dataset", "datasets", "data", "videos", "video", "clips", "raw", "input", "inputs"})
"""Folder names that say nothing alone: a dataset in such a folder is labelled with its parent's name too."""


def absolute_location(path_or_url: str) -> str:
    """`path_or_url` as an absolute local path (no trailing slash), or the URL as given for `scheme://` URLs."""
    text = str(path_or_url)
    if "://" in text:
        return text.rstrip("/")
    return os.path.abspath(os.path.expanduser(text))


def folder_name(path_or_url: str) -> str:
    """The last component of a path or URL (`s3://bucket/runs/w` → `w`)."""
    return absolute_location(path_or_url).rstrip("/").rsplit("/", 1)[-1] or "root"


def dataset_label(dataset_root: str) -> str:
    """A short name for a dataset folder: its name (`ucf101`), or `parent/name` when the name alone is generic
    (`im2flow-demo/dataset`). Never the whole absolute path."""
    location = absolute_location(dataset_root).rstrip("/")
    parts = [p for p in location.split("/") if p and not p.endswith(":")]
    if not parts:
        return "root"
    if parts[-1].lower() in GENERIC_FOLDER_NAMES and len(parts) > 1:
        return f"{parts[-2]}/{parts[-1]}"
    return parts[-1]


def work_dir_tag(work_dir: str) -> str:
    """`<folder name>-<6 hex digits of its absolute URL>`, lower case letters, digits and dashes only."""
    digest = hashlib.sha256(absolute_location(work_dir).encode()).hexdigest()[:6]
    name = _NOT_KEY.sub("-", folder_name(work_dir).lower()).strip("-")[:40] or "work"
    return f"{name}-{digest}"


def artifact_key(kind: str, work_dir: str) -> str:
    """The Prefect artifact key of a `kind` (e.g. `extract-summary`) written for `work_dir`."""
    return f"{kind}-{work_dir_tag(work_dir)}"


def artifact_description(what: str, work_dir: str) -> str:
    """`what`, then the flow run that wrote it and the work dir: every version says where it belongs."""
    run = flow_run.name if flow_run.id else None
    where = f"work dir {absolute_location(work_dir)}"
    return f"{what} (run {run}, {where})" if run else f"{what} ({where})"


def publish_table(kind: str, rows: list[dict], work_dir: str, what: str) -> None:
    """A table artifact under `artifact_key(kind, work_dir)`, described by `what` and its run."""
    create_table_artifact(rows, key=artifact_key(kind, work_dir), description=artifact_description(what, work_dir))


def publish_markdown(kind: str, markdown: str, work_dir: str, what: str) -> None:
    """A Markdown artifact under `artifact_key(kind, work_dir)`, described by `what` and its run."""
    create_markdown_artifact(markdown, key=artifact_key(kind, work_dir),
                             description=artifact_description(what, work_dir))


def run_name(prefix: str, parameter: str, dataset: bool = False) -> str:
    """A flow run's name from one of its parameters (a path): `<prefix>-<folder name>`, or with `dataset`
    `<prefix>-<dataset_label>`. Use as `@flow(flow_run_name=lambda: run_name("export", "out"))`."""
    value = str(flow_run.parameters.get(parameter) or "")
    if not value:
        return prefix
    return f"{prefix}-{dataset_label(value) if dataset else folder_name(value)}"
