"""Tracking: reading commands never create a store; a record of another (or a replaced) store starts new runs."""

import pytest
from mlflow.tracking import MlflowClient

from im2flow_tasks.tracking import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    TrackingNotConfigured,
    ensure_experiment,
    existing_tracking_uri,
    tracked_run,
    ui_run_url,
)


def test_reading_commands_name_a_missing_store_and_create_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingNotConfigured, match="no MLflow store at .*typo/mlflow.db"):
        existing_tracking_uri(str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "mlflow.db").write_bytes(b"")
    assert existing_tracking_uri(str(tmp_path / "w")) == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}"
    assert existing_tracking_uri(None, "http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_a_run_id_the_store_does_not_hold_starts_a_new_run(mlflow_uri):
    with tracked_run(mlflow_uri, "im2flow-train", "train") as first:
        pass
    # The same run id on a store that never held it (the work dir's mlflow.db replaced): a new run, not an error.
    with tracked_run(mlflow_uri, "im2flow-train", "train", run_id="0" * 32, tags={"k": "v"}) as second:
        assert second.info.run_id not in ("0" * 32, first.info.run_id)
    run = MlflowClient(mlflow_uri).get_run(second.info.run_id)
    assert run.info.run_name == "train" and run.data.tags["k"] == "v"
    with tracked_run(mlflow_uri, "im2flow-train", "train", run_id=first.info.run_id) as reopened:
        assert reopened.info.run_id == first.info.run_id


def test_experiments_open_on_their_runs_in_mlflows_ui(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    made = ensure_experiment(mlflow_uri, "im2flow-train")
    assert client.get_experiment(made).tags[EXPERIMENT_KIND_TAG] == "custom_model_development" == EXPERIMENT_KIND
    # One made without a kind (by an older version) gets it; a kind someone chose stays.
    old = client.create_experiment("im2flow-evaluate")
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert ensure_experiment(mlflow_uri, "im2flow-evaluate") == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    chosen = client.create_experiment("im2flow-recognize", tags={EXPERIMENT_KIND_TAG: "finetuning"})
    ensure_experiment(mlflow_uri, "im2flow-recognize")
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "finetuning"


def test_run_links_open_mlflows_model_training_view():
    assert ui_run_url("sqlite:////w/mlflow.db", "3", "abc") == \
        "http://127.0.0.1:5000/#/experiments/3/runs/abc?workflowType=machine_learning"  # `mlflow ui`'s default
    assert ui_run_url("http://tracking:5000/", "3", "abc") == \
        "http://tracking:5000/#/experiments/3/runs/abc?workflowType=machine_learning"  # the server's own UI



def test_a_tracking_store_that_answered_is_not_asked_again_until_the_check_expires(tmp_path, monkeypatch):
    import im2flow_tasks.tracking as tracking

    asked = []

    class Client:
        def __init__(self, uri):
            asked.append(uri)

        def search_experiments(self, max_results):
            if "down" in asked[-1]:
                raise ConnectionError("refused")
            return []

    monkeypatch.setattr(tracking, "MlflowClient", Client)
    monkeypatch.setattr(tracking, "_answered_at", {})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert tracking.ready_tracking_uri(str(tmp_path), uri) == uri
    tracking.check_tracking(uri)  # the CLI's preflight and the flow: one question
    assert asked == [uri]
    tracking.record_answer("http://127.0.0.1:5000")  # a server's health check counts as its answer
    tracking.check_tracking("http://127.0.0.1:5000")
    assert asked == [uri]
    clock = tracking.time.monotonic() + tracking.CHECK_VALID_S + 1
    monkeypatch.setattr(tracking.time, "monotonic", lambda: clock)
    tracking.check_tracking(uri)  # a later run of a long-lived process asks again
    assert asked == [uri, uri]
    with pytest.raises(RuntimeError, match="down.* is unreachable"):
        tracking.check_tracking("http://down:5000")
    with pytest.raises(RuntimeError, match="unreachable"):
        tracking.check_tracking("http://down:5000")  # a failure is never remembered as an answer
