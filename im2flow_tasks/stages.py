"""The pipeline's stage cache: a stage runs, or hands back its last summary when nothing it reads changed.

The key is built from paths, fingerprints and digests of metadata (never from data), so a stage
whose inputs and configuration did not change is a cache hit: the stage's flow does not run, and
a task run `<stage>-reused` ends in a `Cached` state holding the summary it returned last time.
The records are plain JSON in `W/pipeline-cache/` (`im2flow_storage.stage_cache`), never
Prefect's result records, whose default serializer is cloudpickle: a work dir on shared disk or S3
is writable by more people than the machine that reads it. Deleting the work directory also
forgets them.

A stage's flow is called by the pipeline itself (one level of nesting in the run graph), and waits
for the previous stage's summary: Prefect draws that as an edge, so the graph shows the stages in
their order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.states import Completed, State

from im2flow_storage.stage_cache import StageCacheError, read_stage_record, write_stage_record
from im2flow_tasks.process_memory import release_freed_memory


@dataclass(frozen=True)
class StageOutcome:
    """What one stage gave: its summary (plain JSON), whether it was reused, and the object the next
    stage waits for (the value its flow or reuse task returned, which Prefect links to that run)."""

    summary: dict[str, Any]
    cached: bool
    handle: Any


def cached_summary(stage: str, key: str, cache_url: str) -> dict[str, Any] | None:
    """The last summary of `stage` recorded under `key` in `cache_url`, or None (also for a record that is
    not ours: it is refused with a warning, and this run's replaces it)."""
    try:
        return read_stage_record(cache_url, stage, key)
    except StageCacheError as exc:
        get_run_logger().warning("stage %s: ignoring its cache record, which was not written by im2flow: %s",
                                 stage, exc)
        return None


@task(name="reuse-stage", task_run_name="{stage}-reused", persist_result=False)
def reuse_stage(stage: str, summary: dict[str, Any]) -> State:
    """The stage `stage` is not run: its last `summary` is handed on, in a `Cached` state."""
    return Completed(name="Cached", data=summary, message="inputs unchanged: the last summary is reused")


def run_stage(stage: str, key: str, cache_url: str, run: Callable[[Sequence[Any]], dict[str, Any]],
              refresh: bool = False, upstream: Sequence[Any] = ()) -> StageOutcome:
    """Run one pipeline stage, `run(wait_for)` (which calls the stage's flow with `wait_for=upstream`), and
    record its summary under `key`; or, unless `refresh`, reuse the summary recorded last time.

    `upstream`: what the stage waits for (the previous stage's `handle`). What the stage freed goes
    back to the OS before the next one starts (all stages share the driver process).
    """
    cached = None if refresh else cached_summary(stage, key, cache_url)
    if cached is not None:
        handle = reuse_stage(stage, cached, wait_for=list(upstream))
        return StageOutcome(cached, True, handle)
    try:
        handle = run(list(upstream))
        return StageOutcome(write_stage_record(cache_url, stage, key, handle), False, handle)
    finally:
        release_freed_memory()
