"""The README's demo command (`im2flow demo`, im2flow_flows/demo.py) end to end, on a tiny dataset and the
tiny preset."""

import functools

import pytest
from typer.testing import CliRunner

from im2flow_cli.app import app
from tests.im2flow_flows.test_pipeline_flow import TINY

pytestmark = pytest.mark.services


def _sets(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _sets(value, f"{prefix}{key}.")
        else:
            yield from ("--set", f"{prefix}{key}={list(value) if isinstance(value, tuple) else value}")


def test_demo_command_runs_the_pipeline_and_predicts_held_out_frames(tmp_path, prefect_harness, monkeypatch):
    import im2flow_tasks.demo
    from im2flow_storage.demo_dataset import write_demo_dataset

    monkeypatch.setattr(im2flow_tasks.demo, "write_demo_dataset",  # the same generator, fewer and smaller clips
                        functools.partial(write_demo_dataset, groups_per_class=3, test_groups=1, size=48, n_frames=5))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--work-dir", str(work), *_sets(TINY)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    for stage in ("ingest", "extract", "train", "evaluate", "recognize", "potential"):
        assert f"│ {stage} │ ran │" in output, stage
    for method in ("Im2Flow", "Nearest neighbour", "Zero flow", "Mean flow"):  # the paper's flow table
        assert f"| {method} | " in output
    for stream in ("appearance", "motion", "fused"):  # the recognition table
        assert f"| {stream} | " in output
    assert "| oracle | " not in output  # the demo preset leaves the true-flow stream out (its time budget)
    predictions = sorted(p.name for p in (work / "predictions").glob("*_flow.png"))
    assert len(predictions) == 8  # one held-out frame per class
    assert (work / "mlflow.db").is_file() and (work / "dataset" / ".im2flow-demo").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # nothing written to the current directory
    again = CliRunner().invoke(app, ["demo", "--work-dir", str(work), *_sets(TINY)])
    assert again.exit_code == 0, again.output
    again_output = " ".join(again.output.split())
    assert all(f"│ {stage} │ cached" in again_output for stage in ("ingest", "extract", "train", "evaluate"))
    # The Prefect UI's top-level run is named after the work dir and carries the headline itself;
    # the reused stages show as `<stage>-reused` task runs in a Cached state, nested once.
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName

    from im2flow_tasks.run_labels import artifact_key

    with get_client(sync_client=True) as client:
        demos = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["demo-demo"])))
        assert len(demos) == 2
        headline = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[artifact_key("demo-summary", str(work))])))
        assert {a.flow_run_id for a in headline} == {run.id for run in demos}
        assert all("| Im2Flow |" in a.data and "| fused |" in a.data for a in headline)
        reused = {t.name: t.state.name for t in client.read_task_runs() if t.name.endswith("-reused")}
        assert {"ingest-reused", "extract-reused", "train-reused"} <= set(reused)
        assert set(reused.values()) == {"Cached"}
