"""`compare` finds runs by any name (quotes included); progress displays stop when the work raises."""

import threading

import pytest
from mlflow.tracking import MlflowClient

from im2flow_cli.compare import compare_runs, find_run
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.tracking import ensure_experiment


@pytest.mark.parametrize("name", ["it's run 2", 'say "hi"', """both ' and " quotes""", "50%_off", r"back\slash'"])
def test_find_run_by_names_with_quotes(mlflow_uri, name):
    client = MlflowClient(mlflow_uri)
    experiment = ensure_experiment(mlflow_uri, "cmp")
    decoy = client.create_run(experiment, run_name=name + " decoy")
    wanted = client.create_run(experiment, run_name=name)
    client.log_metric(wanted.info.run_id, "epe", 1.5)
    client.log_metric(decoy.info.run_id, "epe", 2.0)
    assert find_run(client, name).info.run_id == wanted.info.run_id
    result = compare_runs(mlflow_uri, name, name + " decoy")
    assert result["metrics"] == [{"metric": "epe", "a": "1.5000", "b": "2.0000", "b − a": "0.5000"}]
    with pytest.raises(ValueError, match="no MLflow run"):
        find_run(client, name + "'missing")


@pytest.mark.services
def test_progress_bar_stops_when_the_work_raises(prefect_harness):
    from prefect import flow

    @flow
    def failing() -> None:
        with RunProgress(5, "working", show=True) as progress:
            progress.advance(2)
            assert progress_threads() == 1  # the bar's refresh thread is running
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing()
    assert progress_threads() == 0


def progress_threads() -> int:
    """Rich's refresh threads still alive."""
    from rich.live import _RefreshThread

    return sum(isinstance(t, _RefreshThread) for t in threading.enumerate())
