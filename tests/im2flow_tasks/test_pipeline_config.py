import pytest
from typer.testing import CliRunner

from im2flow_tasks.config import ConfigError
from im2flow_tasks.pipeline_config import STAGES, load_pipeline_configs, parse_sets


def test_precedence_preset_yaml_env_flags(tmp_path, monkeypatch):
    path = tmp_path / "pipeline.yaml"
    path.write_text("pipeline: {preset: demo, stages: [train, ingest]}\n"
                    "extract: {step: 2}\n"
                    "train: {epochs: 5, loss: {content_weight: 0.5}, generator: {ngf: 16}}\n")
    monkeypatch.setenv("IM2FLOW_TRAIN_EPOCHS", "6")
    monkeypatch.setenv("IM2FLOW_TRAIN_GENERATOR__DEPTH", "5")
    configs = load_pipeline_configs(str(path), parse_sets(["train.epochs=7", "recognize.seeds=[3]",
                                                           "pipeline.dask_address=tcp://127.0.0.1:8786"]))
    train = configs.train
    # preset (demo) < YAML < environment < --set; untouched fields keep the preset's or the default values
    assert (train.epochs, train.loss.content_weight, train.generator.ngf, train.generator.depth) == (7, 0.5, 16, 5)
    assert train.loss.magnitude_norm == "l1" and train.generator.input_size == 64  # from the demo preset
    assert configs.extract.step == 2 and configs.extract.short_side == 64  # YAML field + preset field
    assert configs.recognize.seeds == (3,)
    assert configs.pipeline.stages == ("ingest", "train")  # pipeline order whatever the order given
    # one cluster and one experiment for every stage
    assert configs.ingest.dask_address == configs.extract.dask_address == "tcp://127.0.0.1:8786"
    assert configs.train.experiment == configs.evaluate.experiment == configs.recognize.experiment == "im2flow-pipeline"
    params = configs.as_params()
    assert params["train"]["epochs"] == 7 and set(params) == {"pipeline", "ingest", "extract", "train", "evaluate",
                                                               "recognize"}
    # the paper preset is the defaults
    assert load_pipeline_configs(preset="paper").train.generator.input_size == 256


def test_a_pipeline_file_is_parsed_once_for_every_section(tmp_path, monkeypatch):
    import yaml

    path = tmp_path / "pipeline.yaml"
    path.write_text("pipeline: {preset: demo}\ntrain: {epochs: 5}\nevaluate: {frames_per_video: 3}\n")
    calls = []
    parse = yaml.safe_load
    monkeypatch.setattr(yaml, "safe_load", lambda text: calls.append(1) or parse(text))
    configs = load_pipeline_configs(str(path))
    assert len(calls) == 1  # seven sections, one parse
    assert (configs.train.epochs, configs.evaluate.frames_per_video, configs.pipeline.preset) == (5, 3, "demo")


def test_errors_name_section_and_field(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 0}\n")
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_pipeline_configs(str(bad))
    bad.write_text("trian: {epochs: 3}\n")
    with pytest.raises(ConfigError, match="unknown section.*trian"):
        load_pipeline_configs(str(bad))
    with pytest.raises(ConfigError, match=r"extract\.shrot_side"):
        load_pipeline_configs(None, parse_sets(["extract.shrot_side=3"]))
    with pytest.raises(ConfigError, match="SECTION.FIELD=VALUE"):
        parse_sets(["epochs=3"])
    with pytest.raises(ConfigError, match=r"pipeline\.stages.*unknown stage"):
        load_pipeline_configs(None, {"pipeline": {"stages": "ingest,trian"}})
    monkeypatch.setenv("IM2FLOW_EVAL_FRAMES_PER_VIDEO", "zero")
    with pytest.raises(ConfigError, match=r"(?s)IM2FLOW_EVAL_.*evaluate\.frames_per_video"):
        load_pipeline_configs()
    assert STAGES[0] == "ingest" and STAGES[-1] == "potential"


def test_cli_reports_bad_configuration_before_any_work(tmp_path):
    from im2flow_cli.app import app

    result = CliRunner().invoke(app, ["pipeline", "--dataset", str(tmp_path / "none"), "--work-dir",
                                      str(tmp_path / "w"),
                                      "--set", "train.batch_size=-1"])
    assert result.exit_code == 2 and "train.batch_size" in result.output
    assert not (tmp_path / "w").exists()
    result = CliRunner().invoke(app, ["pipeline", "--dataset", str(tmp_path / "none"), "--work-dir",
                                      str(tmp_path / "w")])
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "w").exists()
    # In its own process: this one may hold a temporary Prefect API (the session's test harness).
    from tests.external import cli
    result = cli(["serve", "--dataset", str(tmp_path), "--work-dir", str(tmp_path / "w"), "--cron", "0 3 * * *"],
                 {"PREFECT_API_URL": "", "PREFECT_HOME": str(tmp_path / "home")}, tmp_path / "serve.log", timeout_s=120)
    assert result.returncode == 2 and "no Prefect server configured" in result.stdout + result.stderr
