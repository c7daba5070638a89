"""MLflow access for im2flow: one place that knows the tracking URI, experiments and naming.

All logging happens in the driver process (SQLite does not like many writers). Runs are reopened
by id, so a resumed training continues the run it started.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from im2flow_storage.paths import local_copy, local_path


class TrackingNotConfigured(ValueError):
    """No MLflow tracking store can be chosen without writing run output somewhere the user did not ask for."""


def default_tracking_uri(work_dir: str | None, configured: str | None = None) -> str:
    """`configured`, else $MLFLOW_TRACKING_URI, else a SQLite file in the (local) work dir.

    Never the current directory: a remote work dir (s3://…) or none at all needs an explicit
    tracking URI, else TrackingNotConfigured says how to give one.
    """
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if work_dir is None:
        raise TrackingNotConfigured("no MLflow tracking store: give --work-dir (its mlflow.db is used) or set "
                                    "MLFLOW_TRACKING_URI")
    path = local_path(work_dir)
    if path is None:
        raise TrackingNotConfigured(
            f"work dir {work_dir} is not local, so it cannot hold the default SQLite tracking store: set "
            "MLFLOW_TRACKING_URI (e.g. http://mlflow-server:5000) or the stage's mlflow_tracking_uri")
    Path(path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(path).absolute() / 'mlflow.db'}"


def existing_tracking_uri(work_dir: str | None, configured: str | None = None) -> str:
    """`default_tracking_uri` for commands that only read runs or models: a SQLite store must already exist.

    TrackingNotConfigured names the file otherwise; nothing is created (a mistyped --work-dir must
    not leave an empty `mlflow.db` behind, nor read as "no such run").
    """
    if configured or os.environ.get("MLFLOW_TRACKING_URI") or work_dir is None or local_path(work_dir) is None:
        return default_tracking_uri(work_dir, configured)
    database = Path(local_path(work_dir) or "").absolute() / "mlflow.db"
    if not database.is_file():
        raise TrackingNotConfigured(f"no MLflow store at {database}: is --work-dir right (the folder a pipeline "
                                    "or train wrote), or set MLFLOW_TRACKING_URI / --tracking-uri")
    return f"sqlite:///{database}"


CHECK_VALID_S = 300.0
"""How long a tracking store that answered counts as checked: a command's preflight and its flows check it
once, while a long-lived process (a served deployment) checks it again on a later run."""

_answered_at: dict[str, float] = {}


def check_tracking(uri: str) -> None:
    """Fail early, naming the URI, if the tracking store cannot be reached (checked once per `CHECK_VALID_S`)."""
    if time.monotonic() - _answered_at.get(uri, -math.inf) < CHECK_VALID_S:
        return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means: cannot track
        raise RuntimeError(f"MLflow tracking store {uri} is unreachable: {exc}") from exc
    record_answer(uri)


def record_answer(uri: str) -> None:
    """Note that the tracking store at `uri` just answered (a preflight's health check), so flows do not ask again."""
    _answered_at[uri] = time.monotonic()


def ready_tracking_uri(work_dir: str | None, configured: str | None = None) -> str:
    """The tracking URI a flow uses (`default_tracking_uri`), checked reachable (`check_tracking`).

    A flow resolves it once and passes it down; callers that already resolved it pass it as `configured`.
    """
    uri = default_tracking_uri(work_dir, configured)
    check_tracking(uri)
    return uri


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → flat {"a.b": "value"} for MLflow params (values as strings, ≤ 6000 chars)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]
    return out


def git_commit() -> str:
    """The code's git commit, or "unknown" outside a checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def artifact_location(tracking_uri: str) -> str | None:
    """Where new experiments keep artifacts: beside a SQLite store (`mlartifacts/`), else the server's choice.

    Without this MLflow would write them to ./mlruns of whatever the current directory is.
    """
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").absolute().as_uri()
    return None


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""The experiment tag MLflow 3's UI reads to choose an experiment's view (its runs table, or GenAI's traces)."""
EXPERIMENT_KIND = "custom_model_development"
"""The kind of every experiment im2flow makes: the UI's "Model training" view, which opens on the runs.
Untagged, MLflow's UI opened the demo's experiment on an empty GenAI overview ("Traces 0")."""


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """The id of experiment `name`, created (with its artifact location and kind tag) if needed.

    An existing experiment without a kind (made before this, or by MLflow's defaults) gets
    EXPERIMENT_KIND; a kind someone chose is kept.
    """
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location(tracking_uri),
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


def ui_run_url(tracking_uri: str, experiment_id: str, run_id: str, local_ui: str = "http://127.0.0.1:5000") -> str:
    """The page of run `run_id` in MLflow's UI: the tracking server's own, else `mlflow ui`'s default address.

    With `?workflowType=machine_learning`: MLflow 3's UI otherwise shows its GenAI view (a per-browser
    choice, GenAI by default), where an experiment opens on an empty traces overview.
    """
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else local_ui
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def ui_model_url(tracking_uri: str, name: str, version: str, local_ui: str = "http://127.0.0.1:5000") -> str:
    """The page of version `version` of registered model `name` in MLflow's UI (as `ui_run_url`)."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else local_ui
    return f"{base}/#/models/{name}/versions/{version}?workflowType=machine_learning"


def log_parent_artifacts(markdown: str, results: Mapping[str, Any]) -> None:
    """On the active (pipeline parent) run: `summary.md` (the headline `markdown`), each stage's report files
    (`StageSummary.parent_report_patterns`) under its label (`evaluate/examples.png`,
    `recognize-split2/confusion_fused.png`, …) and tags naming the registered model version
    (`registered_model`, `registered_model_version`). `results`: stage label → its `StageSummary`."""
    mlflow.log_text(markdown, "summary.md")
    for label, summary in results.items():
        patterns = summary.parent_report_patterns
        for url in summary.files if patterns else []:
            if any(fnmatch.fnmatch(str(url).rsplit("/", 1)[-1], p) for p in patterns):
                log_artifact_url(str(url), label)
        if getattr(summary, "model_version", None) and getattr(summary, "model_uri", None):
            mlflow.set_tags({"registered_model": str(summary.model_uri).removeprefix("models:/").split("@")[0],
                             "registered_model_version": str(summary.model_version)})


@contextmanager
def tracked_run(tracking_uri: str, experiment: str, name: str, run_id: str | None = None,
                parent_run_id: str | None = None, tags: Mapping[str, str] | None = None,
                started_ms: int | None = None) -> Iterator[mlflow.ActiveRun]:
    """Start (or, with `run_id`, reopen) a run in this thread; nested under `parent_run_id` if given, else
    under the run active in this thread, if any.

    `started_ms` (Unix epoch milliseconds): a new run's start time, for work that began before its run
    was opened, so MLflow shows how long the work took, not how long its logging took.
    A `run_id` the tracking store does not hold (a record written against another store, or a store
    replaced since) is not an error: a new run is started, with a warning, and the caller sees its id.
    """
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment)
    if run_id and not run_exists(tracking_uri, run_id):
        logging.getLogger(__name__).warning("MLflow run %s is not in %s (the tracking store changed): logging %s to a "
                                            "new run", run_id, tracking_uri, name)
        run_id = None
    new = not run_id
    if new and started_ms is not None:  # MLflow's fluent API has no start time: create the run, then reopen it
        active = mlflow.active_run()
        parent = parent_run_id or (active.info.run_id if active else None)
        run_id = MlflowClient(tracking_uri).create_run(
            experiment_id, start_time=started_ms, run_name=name,
            tags={**({"mlflow.parentRunId": parent} if parent else {}), **dict(tags or {})}).info.run_id
    # nested=True: a parent may be active in this thread (the flow's own run); it is harmless otherwise.
    kwargs: dict[str, Any] = {"run_id": run_id} if run_id else {"run_name": name, "experiment_id": experiment_id}
    if parent_run_id and not run_id:
        kwargs["parent_run_id"] = parent_run_id
    with mlflow.start_run(nested=True, **kwargs) as run:
        if tags and new and started_ms is None:
            mlflow.set_tags(dict(tags))
        yield run


def now_ms() -> int:
    """The time now in Unix epoch milliseconds (MLflow's unit for run start and end times)."""
    return int(time.time() * 1000)


def run_exists(tracking_uri: str, run_id: str) -> bool:
    """Whether the tracking store at `tracking_uri` holds the run `run_id` (deleted runs count as absent)."""
    try:
        return MlflowClient(tracking_uri).get_run(run_id).info.lifecycle_stage != "deleted"
    except MlflowException:
        return False


def log_artifact_url(url: str, artifact_path: str | None = None) -> None:
    """Log the file at `url` (a local path, file:// URL or any fsspec URL such as s3://…) to the active run.

    MLflow uploads only local files: a remote one is copied to a temporary folder first.
    """
    with local_copy(url) as local:
        mlflow.log_artifact(local, artifact_path)
