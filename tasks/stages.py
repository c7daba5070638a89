"""The pipeline's stage task: a Prefect task, cached on a key of what the stage reads, that runs one stage.

The key is built from paths, fingerprints and digests of metadata (never from data), so a stage
whose inputs and configuration did not change is a cache hit: Prefect marks its task run
`Cached` and hands back the summary the stage returned last time, without running it. Results
and cache records live under the work directory (`W/pipeline-cache/`), so deleting the work
directory also forgets them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.filesystems import RemoteFileSystem

from im2flow_storage.paths import local_path, pipeline_cache_url
from tasks.process_memory import release_freed_memory


def _stage_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    return f"{parameters['stage']}-{parameters['key']}"


def cache_storage(work_dir: str) -> Path | str:
    """Where stage results and cache records are kept: `work_dir`/pipeline-cache (local or fsspec URL).

    A local folder is handed to Prefect as a Path; a URL as a RemoteFileSystem block saved under a
    name derived from the URL (Prefect needs result storage blocks saved server-side).
    """
    url = pipeline_cache_url(work_dir)
    path = local_path(url)
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path).absolute()
    name = "im2flow-cache-" + hashlib.sha256(url.encode()).hexdigest()[:12]
    RemoteFileSystem(basepath=url).save(name, overwrite=True)
    return f"remote-file-system/{name}"


@task(name="stage", task_run_name="{stage}", cache_key_fn=_stage_cache_key, persist_result=True)
def run_stage(stage: str, key: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one pipeline stage (`run()`, which calls the stage's flow) and return its summary.

    Cached on `stage` and `key`; `run` itself is not part of the key. What the stage freed goes back
    to the OS before the next stage starts (all stages share the driver process).
    """
    try:
        return run()
    finally:
        release_freed_memory()
