import pytest

from flows.console_logging import log_file_for, logging_config
from im2flow_storage.demo_dataset import write_demo_dataset
from tests.external import cli


def test_logging_config_quiets_the_console_unless_verbose(tmp_path):
    quiet = logging_config(tmp_path / "x.log", verbose=False)
    loud = logging_config(tmp_path / "x.log", verbose=True)
    assert quiet["handlers"]["console"]["level"] == "WARNING" and loud["handlers"]["console"]["level"] == 0
    assert quiet["handlers"]["file"]["level"] == "INFO" and quiet["handlers"]["file"]["filename"] == str(tmp_path / "x.log")
    assert set(quiet["root"]["handlers"]) == {"console", "file"}
    # Dask's logger has handlers of its own (a LocalCluster turns those down while it runs).
    assert not set(quiet["loggers"]["distributed"]["handlers"]) & set(quiet["root"]["handlers"])
    assert log_file_for(str(tmp_path / "w"), "extract").parent == tmp_path / "w" / "logs"
    assert log_file_for("s3://bucket/w", "extract").parent.name == "im2flow-logs"  # object stores: a local file


@pytest.mark.services
def test_console_shows_progress_and_summary_and_the_log_file_every_task(tmp_path):
    write_demo_dataset(tmp_path / "data", groups_per_class=2, test_groups=1, size=32, n_frames=4)
    work = tmp_path / "w"
    result = cli(["ingest", str(tmp_path / "data"), "-w", str(work), "--workers", "2"], {}, tmp_path / "cli.log")
    assert result.returncode == 0, result.stdout + result.stderr
    console = result.stdout + result.stderr
    assert "probing videos" in console and "ok_by_split" in console  # the bar and the summary
    assert "Task run" not in console and "Flow run" not in console and "distributed." not in console
    (log,) = work.glob("logs/im2flow-ingest-*.log")
    text = log.read_text()
    assert text.count("Task run 'probe-") >= 8  # one task per video on a job this small, each logged
    assert "Flow run 'ingest-" in text and "distributed." in text
    assert str(log) in console  # the console says where the log is
