"""Publishing a stage's outcome: its summary and its failures, in the Prefect UI and the run log."""

from __future__ import annotations

from prefect import get_run_logger, task

from im2flow_storage.reports import write_report_files
from im2flow_tasks.run_labels import publish_table
from im2flow_tasks.summaries import Failure, StageSummary


def publish_outcome(stage: str, summary: StageSummary, work_dir: str, description: str, not_done: str) -> None:
    """`<stage>-summary` table artifact of `work_dir`; for the summary's failures a `<stage>-failures` table
    artifact and one warning each, saying they were `not_done` (e.g. "not exported")."""
    publish_table(f"{stage}-summary", summary.rows(), work_dir, description)
    failures: list[Failure] = getattr(summary, "failures", [])
    if failures:
        publish_table(f"{stage}-failures", [{"item": f.item, "error": f.error} for f in failures], work_dir,
                      f"{len(failures)} {not_done}")
        logger = get_run_logger()
        for f in failures:
            logger.warning("%s %s: %s", not_done, f.item, f.error)


@task(name="write-report", task_run_name="write-{what}-report", persist_result=False)
def write_report(out_dir: str, files: dict[str, str | bytes], what: str) -> list[str]:
    """Write the report files of `what` (evaluation, potential, recognition) into `out_dir`; returns their URLs."""
    return write_report_files(out_dir, files)
