"""The registered G is weights and plain data only: it round-trips, and pickled payloads are refused, not run."""

import io
import json
import pickle

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from im2flow_core.inference import predict_flow_images
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage.checkpoints import save_checkpoint
from im2flow_tasks.model_registry import DESCRIPTOR, WEIGHTS, UnsafeModel, register_generator
from im2flow_tasks.models import load_generator, load_generator_export
from im2flow_tasks.tracking import TrackingNotConfigured, default_tracking_uri, ensure_experiment


def _payload_bytes(marker: str) -> bytes:
    """A pickle that, when loaded, creates `marker` (via builtins.exec)."""
    class Evil:
        def __reduce__(self):
            return (exec, (f"open({marker!r}, 'w').write('ran')",))

    return pickle.dumps(Evil())


def _export(path, seed=0) -> str:
    torch.manual_seed(seed)
    config = GeneratorConfig(depth=3, ngf=8, input_size=32)
    model = UNetGenerator(config).eval()
    save_checkpoint(str(path), {"kind": "im2flow-generator", "generator_config": config.model_dump(mode="json"),
                                "labels": ["a", "b"], "state_dict": model.state_dict()})
    return str(path)


def _run(uri: str) -> str:
    return MlflowClient(uri).create_run(ensure_experiment(uri, "reg")).info.run_id


def test_registered_generator_round_trips_with_alias_and_versions(tmp_path, mlflow_uri):
    export = _export(tmp_path / "generator_final.pt")
    run_id = _run(mlflow_uri)
    assert register_generator(export, mlflow_uri, run_id, "im2flow-generator", "champion") == "1"
    client = MlflowClient(mlflow_uri)
    version = client.get_model_version_by_alias("im2flow-generator", "champion")
    assert str(version.version) == "1" and version.run_id == run_id
    assert version.tags["format"].startswith("torch-weights")
    model_id = version.source.removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    assert logged.model_type == "im2flow-generator" and str(logged.status) == "READY" and logged.source_run_id == run_id
    files = {a.path for a in client.list_logged_model_artifacts(model_id)}
    assert files == {DESCRIPTOR, WEIGHTS, "MLmodel"}  # no pickled module, no code
    loaded = load_generator("models:/im2flow-generator@champion", None, mlflow_uri)
    rgb = np.random.default_rng(0).integers(0, 255, (37, 45, 3), dtype=np.uint8)
    np.testing.assert_array_equal(predict_flow_images(loaded, [rgb], 32)[0],
                                  predict_flow_images(load_generator_export(export), [rgb], 32)[0])
    # A second registration is version 2 and takes the alias; version 1 stays loadable.
    second = _export(tmp_path / "second.pt", seed=1)
    assert register_generator(second, mlflow_uri, run_id, "im2flow-generator", "champion") == "2"
    versions = {"1": export, "@champion": second}
    for ref, path in versions.items():
        got = load_generator(f"models:/im2flow-generator{'/' if ref[0] != '@' else ''}{ref}", None, mlflow_uri)
        want = load_generator_export(path).state_dict()
        assert all(torch.equal(v, want[k]) for k, v in got.state_dict().items())
    for missing in ("models:/im2flow-generator@nope", "models:/im2flow-generator/9", "models:/other@champion"):
        with pytest.raises(ValueError, match=f"model {missing} not found in {mlflow_uri}"):
            load_generator(missing, None, mlflow_uri)


def test_the_registered_model_resolves_in_the_given_store_whatever_the_current_folder(tmp_path, mlflow_uri,
                                                                                      monkeypatch):
    export = _export(tmp_path / "generator_final.pt")
    register_generator(export, mlflow_uri, _run(mlflow_uri), "im2flow-generator", "champion")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # MLflow's process-wide URIs fall back to this folder's (absent) store, as in a fresh process started here.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    monkeypatch.setattr(mlflow.tracking._model_registry.utils, "_registry_uri", None)
    loaded = load_generator(None, None, mlflow_uri)
    want = load_generator_export(export).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())
    assert list(elsewhere.iterdir()) == []  # no mlflow.db created here


def _register_folder(uri: str, folder) -> str:
    """Register whatever `folder` holds as a model version, as anyone with write access could."""
    client = MlflowClient(uri)
    run_id = _run(uri)
    model = client.create_logged_model(client.get_run(run_id).info.experiment_id, name="generator",
                                       source_run_id=run_id)
    client.log_model_artifacts(model.model_id, str(folder))
    client.finalize_logged_model(model.model_id, "READY")
    try:
        client.create_registered_model("im2flow-generator")
    except mlflow.exceptions.MlflowException:
        pass
    mlflow.set_tracking_uri(uri)
    version = client.create_model_version("im2flow-generator", f"models:/{model.model_id}", run_id=run_id,
                                          model_id=model.model_id)
    client.set_registered_model_alias("im2flow-generator", "champion", version.version)
    return version.version


def test_a_pickled_model_in_the_registry_is_refused_not_run(tmp_path, mlflow_uri):
    marker = tmp_path / "code-ran"
    # 1. A model in mlflow.pytorch's pickle layout (no im2flow descriptor).
    folder = tmp_path / "pickled"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "model.pth").write_bytes(_payload_bytes(str(marker)))
    (folder / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n    pytorch_version: 2.13.0\n")
    _register_folder(mlflow_uri, folder)
    with pytest.raises(UnsafeModel, match="not a weights-only im2flow generator"):
        load_generator(None, None, mlflow_uri)
    assert not marker.exists()

    # 2. Our descriptor, with a pickle payload as the weights (its checksum recorded correctly).
    import hashlib

    folder = tmp_path / "planted"
    folder.mkdir()
    payload = _payload_bytes(str(marker))
    buffer = io.BytesIO()
    torch.save({"kind": "im2flow-generator"}, buffer)  # a real torch zip file ...
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(folder / WEIGHTS, "w") as dst:
        for item in src.infolist():  # ... whose pickle is replaced by the payload
            dst.writestr(item, payload if item.filename.endswith("data.pkl") else src.read(item.filename))
    data = (folder / WEIGHTS).read_bytes()
    (folder / DESCRIPTOR).write_text(json.dumps({
        "kind": "im2flow-generator", "format": "torch-weights-only/1", "weights": WEIGHTS,
        "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "generator_config": {}}))
    _register_folder(mlflow_uri, folder)
    with pytest.raises(UnsafeModel, match="refused"):
        load_generator(None, None, mlflow_uri)
    assert not marker.exists()

    # 3. A genuine export whose weights were swapped after registration: the checksum catches it.
    export = _export(tmp_path / "generator_final.pt")
    version = register_generator(export, mlflow_uri, _run(mlflow_uri), "im2flow-generator", "champion")
    model_id = MlflowClient(mlflow_uri).get_model_version("im2flow-generator", version).source.removeprefix("models:/")
    location = MlflowClient(mlflow_uri).get_logged_model(model_id).artifact_location
    target = location.removeprefix("file://") + f"/{WEIGHTS}"
    _export(target, seed=5)
    with pytest.raises(UnsafeModel, match="SHA-256"):
        load_generator(None, None, mlflow_uri)


def test_no_tracking_store_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrackingNotConfigured, match="MLFLOW_TRACKING_URI"):
        default_tracking_uri("s3://bucket/work")
    with pytest.raises(TrackingNotConfigured, match="--work-dir"):
        default_tracking_uri(None)
    with pytest.raises(TrackingNotConfigured):
        load_generator(None, None)
    assert default_tracking_uri(str(tmp_path / "w")) == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
