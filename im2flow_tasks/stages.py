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
from pydantic import ValidationError

from im2flow_storage.stage_cache import StageCacheError, read_stage_record, write_stage_record
from im2flow_tasks.process_memory import release_freed_memory
from im2flow_tasks.summaries import StageSummary


@dataclass(frozen=True)
class StageOutcome:
    """What one stage gave: its typed summary (as it reads back from the cache), whether it was reused, and the
    object the next stage waits for (the value its flow or reuse task returned, which Prefect links to that run)."""

    summary: StageSummary
    cached: bool
    handle: Any


def cached_summary(stage: str, kind: type[StageSummary], key: str, cache_url: str) -> StageSummary | None:
    """The last summary of `stage` recorded under `key` in `cache_url`, or None: also for a record that is not
    ours (refused with a warning) or that no longer fits the summary's type (an older im2flow's): this run's
    replaces it."""
    try:
        record = read_stage_record(cache_url, stage, key)
        return None if record is None else kind.model_validate(record)
    except StageCacheError as exc:
        get_run_logger().warning("stage %s: ignoring its cache record, which was not written by im2flow: %s",
                                 stage, exc)
    except ValidationError as exc:
        get_run_logger().warning("stage %s: its cache record does not fit this version's summary (%d fields); "
                                 "the stage runs again", stage, exc.error_count())
    return None


@task(name="reuse-stage", task_run_name="{stage}-reused", persist_result=False)
def reuse_stage(stage: str, summary: StageSummary) -> State:
    """The stage `stage` is not run: its last `summary` is handed on, in a `Cached` state."""
    return Completed(name="Cached", data=summary, message="inputs unchanged: the last summary is reused")


def run_stage(stage: str, kind: type[StageSummary], key: str, cache_url: str,
              run: Callable[[Sequence[Any]], StageSummary], refresh: bool = False,
              upstream: Sequence[Any] = ()) -> StageOutcome:
    """Run one pipeline stage, `run(wait_for)` (which calls the stage's flow with `wait_for=upstream` and returns
    its `kind` summary), and record its summary under `key`; or, unless `refresh`, reuse the summary recorded
    last time.

    `upstream`: what the stage waits for (the previous stage's `handle`). What the stage freed goes
    back to the OS before the next one starts (all stages share the driver process).
    """
    cached = None if refresh else cached_summary(stage, kind, key, cache_url)
    if cached is not None:
        handle = reuse_stage(stage, cached, wait_for=list(upstream))
        return StageOutcome(cached, True, handle)
    try:
        handle = run(list(upstream))
        # Handed on as it reads back, so a fresh run and a cached one give equal summaries.
        return StageOutcome(kind.model_validate(write_stage_record(cache_url, stage, key, handle.cache_record())),
                            False, handle)
    finally:
        release_freed_memory()
