import pytest

from im2flow_tasks.config import ConfigError, ExtractConfig, TrainConfig, load_config


def test_precedence_defaults_yaml_env_flags(tmp_path, monkeypatch):
    config_file = tmp_path / "stages.yaml"
    config_file.write_text("extract:\n  step: 3\n  short_side: 128\n  tvl1:\n    warps: 2\n"
                           "train:\n  epochs: 7\n  generator:\n    depth: 5\n    input_size: 64\n")
    monkeypatch.setenv("IM2FLOW_EXTRACT_SHORT_SIDE", "96")
    monkeypatch.setenv("IM2FLOW_TRAIN_LOSS__CONTENT_WEIGHT", "0")
    extract = load_config(ExtractConfig, config_file, "extract", step=None, max_frames=50)
    assert (extract.step, extract.short_side, extract.max_frames, extract.tvl1.warps) == (3, 96, 50, 2)
    assert extract.tvl1.tau == 0.25  # untouched defaults stay OpenCV's
    train = load_config(TrainConfig, config_file, "train", epochs=9)
    assert (train.epochs, train.generator.depth, train.loss.content_weight) == (9, 5, 0.0)
    assert train.crop_size == 64 and train.resolved_load_size == 72


def test_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  generator:\n    depht: 5\n")
    with pytest.raises(ConfigError, match="generator.depht"):
        load_config(TrainConfig, bad, "train")
    with pytest.raises(ConfigError, match="flow_max_error_px|max_error_px"):
        load_config(ExtractConfig, flow_max_error_px=7.0)
    with pytest.raises(ConfigError, match="input_size"):
        load_config(TrainConfig, generator={"depth": 6, "input_size": 100})


def test_store_config_changes_fingerprint_only_with_content():
    from im2flow_storage.flow_store import config_fingerprint

    a = ExtractConfig(workers=1).store_config()
    assert config_fingerprint(a) == config_fingerprint(ExtractConfig(workers=2, dask_address="tcp://x:1").store_config())
    assert config_fingerprint(a) != config_fingerprint(ExtractConfig(step=2).store_config())
    assert config_fingerprint(a) != config_fingerprint(ExtractConfig(flow_codec="quantized").store_config())


def test_recognize_config_from_yaml_env_and_flags(tmp_path, monkeypatch):
    from im2flow_tasks.config import RecognizeConfig
    path = tmp_path / "c.yaml"
    path.write_text("recognize:\n  seeds: [4, 5]\n  motion: {epochs: 3}\n")
    monkeypatch.setenv("IM2FLOW_RECOGNIZE_MOTION__BASE_WIDTH", "8")
    config = load_config(RecognizeConfig, path, "recognize", fusion_weight=0.3)
    assert config.seeds == (4, 5) and config.motion.epochs == 3 and config.motion.base_width == 8
    assert config.fusion_weight == 0.3 and config.appearance.epochs == 20
    with pytest.raises(ConfigError, match="fusion_weight"):
        load_config(RecognizeConfig, None, None, fusion_weight=1.5)
    with pytest.raises(ConfigError, match="phi_weights"):
        load_config(RecognizeConfig, None, None, motion_init="phi")


def test_flat_or_misspelt_config_files_are_never_silently_ignored(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("epochs: 4\ngenerator:\n  depth: 5\n")
    train = load_config(TrainConfig, flat, "train")  # a flat file of this stage's fields works
    assert (train.epochs, train.generator.depth) == (4, 5)
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['epochs'.*'extract'"):
        load_config(ExtractConfig, flat, "extract")  # a flat train file given to extract: refused, section named
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text("trian:\n  epochs: 4\n")
    with pytest.raises(ConfigError, match=r"\['trian'\].*ingest, extract, train"):
        load_config(TrainConfig, misspelt, "train")
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("train:\n  epochs: 4\nepochs: 5\nextrct:\n  step: 2\n")
    with pytest.raises(ConfigError, match=r"\['epochs', 'extrct'\].*holds only sections"):
        load_config(TrainConfig, mixed, "train")
    other = tmp_path / "other.yaml"
    other.write_text("extract:\n  step: 2\n")  # a pipeline file without this stage's section: defaults
    assert load_config(TrainConfig, other, "train").epochs == TrainConfig().epochs
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("train: [1, 2]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(TrainConfig, not_mapping, "train")
