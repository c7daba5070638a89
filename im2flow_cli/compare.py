"""Side-by-side comparison of two MLflow runs (e.g. two pipeline runs): tags, params that differ, metrics."""

from __future__ import annotations

import math
from typing import Any

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

COMPARED_TAGS = ("dataset", "dataset_digest", "store_fingerprint", "git_commit", "preset", "stages", "stages_cached")


def find_run(client: MlflowClient, ref: str) -> Run:
    """The run with id `ref`, else the newest run named `ref` in any experiment; ValueError if none."""
    try:
        return client.get_run(ref)
    except MlflowException:
        pass
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=_name_filter(ref), order_by=["attributes.start_time DESC"],
                              max_results=1000) if experiments else []
    runs = [r for r in runs if r.info.run_name == ref]
    if not runs:
        raise ValueError(f"no MLflow run with id or name {ref!r} in {client.tracking_uri}")
    return runs[0]


def _name_filter(name: str) -> str:
    """An MLflow filter that matches runs named `name` (and, where quoting cannot express it, a few more).

    MLflow's filter grammar has no escape inside string literals: a name with single quotes is
    written in double quotes; one with both kinds is matched by its prefix, and the caller
    compares the names exactly.
    """
    if "'" not in name:
        return f"tags.mlflow.runName = '{name}'"
    if '"' not in name:
        return f'tags.mlflow.runName = "{name}"'
    prefix = name.split("'")[0].split('"')[0]
    return f"tags.mlflow.runName LIKE '{prefix}%'"


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def compare_runs(tracking_uri: str, ref_a: str, ref_b: str, all_params: bool = False) -> dict[str, Any]:
    """Tags, params (only those that differ unless `all_params`) and metrics of two runs, side by side.

    Returns {"runs": [(id, name), (id, name)], "tags": rows, "params": rows, "metrics": rows}; metric
    rows carry the difference b − a.
    """
    client = MlflowClient(tracking_uri)
    a, b = find_run(client, ref_a), find_run(client, ref_b)
    tag_rows = [{"tag": t, "a": a.data.tags.get(t, ""), "b": b.data.tags.get(t, "")} for t in COMPARED_TAGS
                if a.data.tags.get(t) or b.data.tags.get(t)]
    keys = sorted(set(a.data.params) | set(b.data.params))
    param_rows = [{"param": k, "a": a.data.params.get(k, "—"), "b": b.data.params.get(k, "—")} for k in keys
                  if all_params or a.data.params.get(k) != b.data.params.get(k)]
    metric_rows = []
    for k in sorted(set(a.data.metrics) | set(b.data.metrics)):
        va, vb = a.data.metrics.get(k), b.data.metrics.get(k)
        delta = vb - va if va is not None and vb is not None else None
        metric_rows.append({"metric": k, "a": _number(va), "b": _number(vb), "b − a": _number(delta)})
    return {"runs": [(a.info.run_id, a.info.run_name), (b.info.run_id, b.info.run_name)],
            "tags": tag_rows, "params": param_rows, "metrics": metric_rows}
