import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from im2flow_cli.console_logging import UnsafeFolderError, log_file_for, logging_config, private_temp_folder
from im2flow_storage.demo_dataset import write_demo_dataset
from tests.external import cli


def test_logging_config_quiets_the_console_unless_verbose(tmp_path):
    quiet = logging_config(tmp_path / "x.log", verbose=False)
    loud = logging_config(tmp_path / "x.log", verbose=True)
    assert quiet["handlers"]["console"]["level"] == "WARNING" and loud["handlers"]["console"]["level"] == 0
    assert quiet["handlers"]["file"]["level"] == "INFO"
    assert quiet["handlers"]["file"]["filename"] == str(tmp_path / "x.log")
    assert set(quiet["root"]["handlers"]) == {"console", "file"}
    # Dask's logger has handlers of its own (a LocalCluster turns those down while it runs).
    assert not set(quiet["loggers"]["distributed"]["handlers"]) & set(quiet["root"]["handlers"])
    assert log_file_for(str(tmp_path / "w"), "extract").parent == tmp_path / "w" / "logs"
    assert log_file_for("s3://bucket/w",
                        "extract").parent.parent.name.startswith("im2flow-")  # object stores: a local file


def test_the_console_gets_one_line_per_error_and_the_log_file_the_traceback(tmp_path):
    import io
    import logging
    import logging.config

    config = logging_config(tmp_path / "x.log", verbose=False)
    console, stream = config["handlers"]["dask_console"], io.StringIO()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                               "formatters": {"one_line": config["formatters"]["one_line"]},
                               "handlers": {"console": {**console, "stream": stream},
                                            "file": {"class": "logging.FileHandler", "filename": str(tmp_path / "f")}},
                               "loggers": {"distributed.test": {"handlers": ["console", "file"], "level": "INFO",
                                                                "propagate": False}}})
    try:
        raise ConnectionError("stream is closed")
    except ConnectionError:
        logging.getLogger("distributed.test").error("heartbeat failed", exc_info=True)
    assert stream.getvalue().strip().endswith("heartbeat failed (traceback in the log file)")
    assert "Traceback" in (tmp_path / "f").read_text()  # the file handler still got the whole record
    # A local worker logs through Dask's own handler until Prefect configures it: the preload quiets that one too.
    from im2flow_services.one_line_logs import quiet_dask_console

    dask_stream = io.StringIO()
    dask_handler = logging.StreamHandler(dask_stream)
    logging.getLogger("distributed").addHandler(dask_handler)
    quiet_dask_console()
    try:
        raise ConnectionError("stream is closed")
    except ConnectionError:
        logging.getLogger("distributed").error("heartbeat failed", exc_info=True)
    assert "Traceback" not in dask_stream.getvalue() and "(traceback in the log file)" in dask_stream.getvalue()
    logging.getLogger("distributed").removeHandler(dask_handler)
    # Prefect's own failure records: a traceback, or a task's "Finished in state Failed", stay off the console.
    from im2flow_cli.console_logging import NoEngineTracebacks

    keep = NoEngineTracebacks().filter
    failed = logging.LogRecord("prefect.task_runs", logging.ERROR, "", 0, "Finished in state Failed('x')", None, None)
    done = logging.LogRecord("prefect.task_runs", logging.INFO, "", 0, "Finished in state Completed()", None, None)
    assert not keep(failed) and keep(done) and keep(logging.LogRecord("im2flow", 40, "", 0, "x", None, None))


def test_log_settings_live_in_a_private_folder_never_in_one_another_user_could_own(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv("PREFECT_LOGGING_SETTINGS_PATH", raising=False)
    shared = tmp_path / f"im2flow-{os.getuid()}"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)  # a folder of that name, open to everyone (as if planted by another user)
    with pytest.raises(UnsafeFolderError, match="0700"):
        private_temp_folder()
    shared.rmdir()
    (tmp_path / "elsewhere").mkdir()
    shared.symlink_to(tmp_path / "elsewhere")  # a link to a folder someone else controls
    with pytest.raises(UnsafeFolderError, match="not a folder"):
        private_temp_folder()
    shared.unlink()
    folder = private_temp_folder()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.getuid()
    # configure_logging (in a fresh process: Prefect must not be imported yet) writes its settings there,
    # not beside the log file in the work dir or under a shared name.
    code = ("import os, sys, tempfile; tempfile.tempdir = sys.argv[1]; "
            "from im2flow_cli.console_logging import configure_logging; "
            "log = configure_logging(sys.argv[2], 'ingest', False); print(log); "
            "print(os.environ['PREFECT_LOGGING_SETTINGS_PATH'])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "w")], capture_output=True,
                         text=True, check=True).stdout.split()
    settings = Path(out[1])
    assert Path(out[0]).parent == tmp_path / "w" / "logs" and settings.parent == folder / "logging"
    assert stat.S_IMODE(settings.parent.stat().st_mode) == 0o700 and settings.is_file()
    assert not list((tmp_path / "w").rglob("*.yml"))


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
    assert "Task run 'probe-" in text and "Finished in state Completed" in text  # the workers' task lines
    assert "Flow run 'ingest-" in text and "distributed." in text
    assert str(log) in console  # the console says where the log is
