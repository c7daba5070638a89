"""The pipeline's stage task: runs one stage, or hands back its last summary when nothing it reads changed.

The key is built from paths, fingerprints and digests of metadata (never from data), so a stage
whose inputs and configuration did not change is a cache hit: its task run ends in a `Cached`
state holding the summary the stage returned last time, and the stage does not run. The records
are plain JSON in `W/pipeline-cache/` (`im2flow_storage.stage_cache`), never Prefect's result
records, whose default serializer is cloudpickle: a work dir on shared disk or S3 is writable by
more people than the machine that reads it. Deleting the work directory also forgets them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.states import Completed, State

from im2flow_storage.stage_cache import StageCacheError, read_stage_record, write_stage_record
from tasks.process_memory import release_freed_memory


@task(name="stage", task_run_name="{stage}", persist_result=False)
def run_stage(stage: str, key: str, cache_url: str, run: Callable[[], dict[str, Any]],
              refresh: bool = False) -> dict[str, Any] | State:
    """Run one pipeline stage (`run()`, which calls the stage's flow) and return its summary.

    Unless `refresh`, a record of `stage` under `key` in `cache_url` is returned instead, as a
    `Cached` state (`run` itself is not part of the key). A record that is not ours is refused with
    a warning and replaced by this run's. What the stage freed goes back to the OS before the next
    stage starts (all stages share the driver process).
    """
    if not refresh:
        try:
            cached = read_stage_record(cache_url, stage, key)
        except StageCacheError as exc:
            get_run_logger().warning("stage %s: ignoring its cache record, which was not written by im2flow: %s",
                                     stage, exc)
            cached = None
        if cached is not None:
            return Completed(name="Cached", data=cached, message="inputs unchanged: the last summary is reused")
    try:
        return write_stage_record(cache_url, stage, key, run())
    finally:
        release_freed_memory()
