"""Where the CLI's log lines go: warnings and errors to the console, everything to a log file and the Prefect UI.

At 13,000 videos, one INFO line per Prefect task and Dask's own lines would bury what matters.
The console keeps one progress bar per stage, warnings, errors and the final summary; every INFO
line (task runs, flow runs, Dask) goes to `<work dir>/logs/im2flow-<UTC time>.log` and, as before, to
the Prefect API (the UI). `--verbose` puts them back on the console.

It works through Prefect's own logging configuration (`PREFECT_LOGGING_SETTINGS_PATH`): Prefect's
default file plus a file handler, so local Dask workers, which inherit the environment, log the same
way. It must run before Prefect or Dask is imported; workers of an external cluster keep their own
logging (their task lines still reach the Prefect UI).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from im2flow_services.one_line_logs import QUIET_CONSOLE_ENV
from im2flow_storage.paths import local_path, logs_url


class UnsafeFolderError(RuntimeError):
    """A folder that must be private to this user is not (another owner, a link, or open to others)."""


def private_folder(path: Path) -> Path:
    """`path` created 0700 if missing, then checked: a real folder (no link), owned by this user, closed to others.

    The temp folder is shared by every user: a folder there named like ours may be someone else's,
    and a logging settings file read from it would let them name any factory for `dictConfig` to call.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFolderError(f"{path} is not a folder (a link or a file); remove it or set TMPDIR")
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o077):
        raise UnsafeFolderError(f"{path} must belong to this user and be closed to others (mode 0700); "
                                "remove it or set TMPDIR")
    return path


def private_temp_folder() -> Path:
    """This user's private folder under the temp folder (`im2flow-<uid>`, 0700): log settings, logs of URL work dirs."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return private_folder(Path(tempfile.gettempdir()) / f"im2flow-{user}")


def log_file_for(work_dir: str | None, command: str) -> Path:
    """`<work_dir>/logs/im2flow-<command>-<UTC time>.log` for a local work dir, else in this user's private
    temp folder."""
    local = local_path(logs_url(work_dir)) if work_dir else None
    folder = Path(local) if local else private_temp_folder() / "logs"
    return folder / f"im2flow-{command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"


class NoEngineTracebacks(logging.Filter):
    """Keeps Prefect's own error records that carry a traceback (a flow or task that raised) off the console.

    The CLI reports what failed in one line; the traceback stays in the log file and the Prefect UI.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect"):
            return True
        # A task that raised is also announced as "Finished in state Failed(...)": the CLI's error line says it.
        failed_task = record.name == "prefect.task_runs" and str(record.msg).startswith("Finished in state Failed")
        return not (record.exc_info or failed_task)


def logging_config(log_file: Path, verbose: bool) -> dict[str, Any]:
    """Prefect's default logging configuration with a file handler on the root and Dask's loggers."""
    spec = importlib.util.find_spec("prefect")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("prefect is not installed")
    default = Path(next(iter(spec.submodule_search_locations))) / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text())
    file_handler = {"level": "INFO", "class": "logging.FileHandler", "filename": str(log_file),
                    "formatter": "standard", "delay": True, "encoding": "utf-8"}
    config["handlers"]["console"]["level"] = 0 if verbose else "WARNING"
    if not verbose:
        # The command prints one `error:` line for what failed; Prefect's engine would add the traceback.
        config.setdefault("filters", {})["no_engine_tracebacks"] = {"()": f"{__name__}.NoEngineTracebacks"}
        config["handlers"]["console"]["filters"] = ["no_engine_tracebacks"]
    config["handlers"]["file"] = file_handler
    config["root"]["handlers"] = ["console", "file"]
    # Dask's loggers get handlers of their own: a LocalCluster turns every stream handler of the
    # `distributed` logger down to WARNING while it runs, which must not silence Prefect's lines too.
    config["handlers"]["dask_console"] = {"level": 0 if verbose else "WARNING", "class": "logging.StreamHandler",
                                          "formatter": "standard" if verbose else "one_line",
                                          "stream": "ext://sys.stderr"}
    # Dask's errors (a worker whose scheduler closed while a failed command shut its cluster down) stay one line
    # on the console, whole in the log file.
    config["formatters"]["one_line"] = {"()": "im2flow_services.one_line_logs.OneLineFormatter"}
    config["handlers"]["dask_file"] = dict(file_handler)
    config["loggers"]["distributed"] = {"level": "INFO", "handlers": ["dask_console", "dask_file"], "propagate": False}
    return config


def configure_logging(work_dir: str | None, command: str, verbose: bool) -> Path | None:
    """Send this command's (and its local workers') INFO lines to a log file, the console only if `verbose`.

    Returns the log file, or None when Prefect was already imported (too late to configure) or the
    user set `PREFECT_LOGGING_SETTINGS_PATH` themselves (their configuration wins).
    """
    import sys

    if not verbose:
        # MLflow logs through its own handler and prints "View run … at: URL" for every run it ends
        # on a tracking server (dozens a pipeline); the final summary names the run that matters.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if "prefect" in sys.modules or os.environ.get("PREFECT_LOGGING_SETTINGS_PATH"):
        return None
    log_file = log_file_for(work_dir, command)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # The settings file is read back by Prefect's dictConfig, which can call any factory it names:
    # it lives only in this user's private folder, never in a work dir or the shared temp folder.
    settings = private_folder(private_temp_folder() / "logging") / (log_file.stem + ".logging.yml")
    settings.write_text(yaml.safe_dump(logging_config(log_file, verbose), sort_keys=False))
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(settings)
    if not verbose:
        # Dask reads its own logging setting when imported (here and in local workers): quiet until WARNING;
        # local workers print one line per error (im2flow_services.worker_preload) before Prefect sets them up.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        os.environ[QUIET_CONSOLE_ENV] = "1"
    return log_file
