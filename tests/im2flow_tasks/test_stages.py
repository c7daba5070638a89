"""The pipeline's stage cache reads plain JSON only; no Prefect task or flow of ours persists a (pickled) result."""

import importlib
import json
import pkgutil

import pytest
from prefect import Flow, Task, flow
from prefect.cache_policies import NO_CACHE
from prefect.results import ResultRecord, ResultRecordMetadata
from prefect.serializers import PickleSerializer

import im2flow_cli
import im2flow_flows
import im2flow_services
import im2flow_tasks
from im2flow_storage.stage_cache import StageCacheError, read_stage_record, record_url, write_stage_record
from im2flow_tasks.stages import run_stage
from im2flow_tasks.summaries import Failure, IngestSummary


class _Payload:
    """Unpickling this creates a file: the proof that a record was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_prefect_record(marker: str, storage_key: str) -> bytes:
    """A Prefect result record as Prefect writes it (serializer: pickle) whose payload creates `marker`."""
    record = ResultRecord(metadata=ResultRecordMetadata(storage_key=storage_key, serializer=PickleSerializer()),
                          result=_Payload(marker))
    return record.serialize()


def test_stage_records_are_plain_json_and_foreign_records_are_refused(tmp_path):
    cache = str(tmp_path / "pipeline-cache")
    assert read_stage_record(cache, "train", "abc") is None
    back = write_stage_record(cache, "train", "abc", {"acc": 0.5, "path": tmp_path, "rows": [(1, 2.0)]})
    assert back == {"acc": 0.5, "path": str(tmp_path), "rows": [[1, 2.0]]}
    assert read_stage_record(cache, "train", "abc") == back
    with pytest.raises(TypeError, match="not plain JSON"):
        write_stage_record(cache, "train", "abc", {"model": object()})
    with pytest.raises(ValueError, match="letters, digits"):
        record_url(cache, "train", "../../elsewhere")
    marker = tmp_path / "ran"
    path = tmp_path / "pipeline-cache" / "train-abc.json"
    path.write_bytes(_pickled_prefect_record(str(marker), str(path)))
    with pytest.raises(StageCacheError, match="pickle"):
        read_stage_record(cache, "train", "abc")
    path.write_bytes(b"\x80\x04K\x01.")  # a bare pickle
    with pytest.raises(StageCacheError, match="not JSON"):
        read_stage_record(cache, "train", "abc")
    assert not marker.exists()


@pytest.mark.services
def test_a_planted_pickle_record_never_runs_and_the_stage_runs_again(tmp_path, prefect_harness):
    cache = str(tmp_path / "pipeline-cache")
    calls = []

    summary = IngestSummary(manifest="m", videos=3, probed=3, status={"ok": 3}, ok_by_split={"train": 3}, labels=1,
                            layout="folders", failures=[Failure(item="a.avi", error="corrupt: no frames")])

    @flow(flow_run_name="probe-stage", persist_result=False)
    def stage_flow():
        calls.append(1)
        return summary

    @flow(persist_result=False)
    def pipeline():
        return [run_stage("ingest", IngestSummary, "k1", cache, lambda wait_for: stage_flow(wait_for=wait_for))
                for _ in range(2)]

    first, second = pipeline()
    assert not first.cached and second.cached and second.summary == first.summary == summary
    assert isinstance(second.summary, IngestSummary) and second.summary.failures[0].error == "corrupt: no frames"
    assert len(calls) == 1
    marker = tmp_path / "ran"
    for name in ("ingest-k1.json", "ingest-k1"):  # ours, and the name Prefect's result storage used
        (tmp_path / "pipeline-cache" / name).write_bytes(_pickled_prefect_record(str(marker), name))
    third, fourth = pipeline()
    assert not marker.exists()  # nothing was unpickled
    assert not third.cached and len(calls) == 2  # the foreign record was a miss: the stage ran
    assert fourth.cached and fourth.summary == summary  # and its own record replaced it
    assert json.loads((tmp_path / "pipeline-cache" / "ingest-k1.json").read_text())["format"] == "im2flow-stage-cache"
    # A record of an older summary (a field it no longer has, none it needs) is a miss too: the stage runs again.
    write_stage_record(cache, "ingest", "k1", {"videos": 3, "retired_field": 1})
    fifth, sixth = pipeline()
    assert not fifth.cached and sixth.cached and len(calls) == 3 and sixth.summary == summary


def test_no_task_or_flow_of_ours_persists_or_reads_back_a_result():
    """Prefect's default result serializer is cloudpickle: with persist_result=False a task neither writes nor
    looks up result records, whatever `PREFECT_RESULTS_PERSIST_BY_DEFAULT` a user sets."""
    found = {}
    for package in (im2flow_flows, im2flow_tasks, im2flow_services, im2flow_cli):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            for name, value in vars(importlib.import_module(module.name)).items():
                if isinstance(value, (Task, Flow)) and value.__module__ == module.name:
                    found[f"{module.name}.{name}"] = value
    assert len(found) >= 20, sorted(found)
    persisting = [name for name, value in found.items() if value.persist_result is not False]
    assert not persisting
    assert all(value.cache_policy is None or value.cache_policy == NO_CACHE
               for value in found.values() if isinstance(value, Task))


def test_a_cached_summary_equals_the_fresh_one_nan_included(tmp_path):
    import math

    import numpy as np

    back = write_stage_record(str(tmp_path), "potential", "k", {"rho": float("nan"), "n": np.int64(3),
                                                                "x": np.float32(0.5)})
    again = read_stage_record(str(tmp_path), "potential", "k")
    assert math.isnan(back["rho"]) and math.isnan(again["rho"]) and again["n"] == 3 and again["x"] == 0.5
