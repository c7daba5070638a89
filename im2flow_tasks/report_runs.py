"""Recording a finished report in MLflow: one run with its files, params and metrics (and one nested run a row)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import mlflow
from prefect import task

from im2flow_tasks.tracking import log_artifact_url, tracked_run


@task(name="log-report-run", task_run_name="log-{name}-run", persist_result=False)
def log_report_run(tracking_uri: str, experiment: str, name: str, tags: Mapping[str, str],
                   params: Mapping[str, str], files: list[str], metrics: Mapping[str, float],
                   started_ms: int | None = None, children: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """An MLflow run `name` in `experiment` holding the report `files` (URLs), `params` and `metrics`, with
    one nested run per entry of `children` (a table row's name → its metrics); non-finite metrics are left
    out. `started_ms`: when the work began (the run spans it, though it is opened after). Returns the run id.
    """
    with tracked_run(tracking_uri, experiment, name, tags=tags, started_ms=started_ms) as run:
        if params:
            mlflow.log_params(dict(params))
        for url in files:
            log_artifact_url(url)
        for child, child_metrics in (children or {}).items():
            with tracked_run(tracking_uri, experiment, child, parent_run_id=run.info.run_id, tags={"method": child}):
                mlflow.log_metrics({k: v for k, v in child_metrics.items() if math.isfinite(v)})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
    return run.info.run_id
