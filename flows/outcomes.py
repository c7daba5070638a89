"""Publishing a stage's outcome: its summary and its failures, in the Prefect UI and the run log."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact


def publish_outcome(stage: str, summary: dict[str, Any], failures: list[dict[str, str]], description: str,
                    not_done: str) -> None:
    """`<stage>-summary` table artifact; for failures (dicts with item and error) a `<stage>-failures` table
    artifact and one warning each, saying they were `not_done` (e.g. "not exported")."""
    create_table_artifact([{"item": k, "value": str(v)} for k, v in summary.items()], key=f"{stage}-summary",
                          description=description)
    if failures:
        create_table_artifact([{"item": f["item"], "error": f["error"]} for f in failures], key=f"{stage}-failures",
                              description=f"{len(failures)} {not_done}")
        logger = get_run_logger()
        for f in failures:
            logger.warning("%s %s: %s", not_done, f["item"], f["error"])
