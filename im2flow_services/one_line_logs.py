"""One line per log record on a quiet console: tracebacks stay in the log file.

Used by the CLI's logging configuration (`im2flow_cli.console_logging`) for Dask's console handler, and by
the local cluster's workers (`im2flow_services.worker_preload`), which log through Dask's own handler until
Prefect configures their logging: a worker whose scheduler closed while a command that failed fast shut its
cluster down reports one line, not a traceback under the command's one `error:` line.
"""

from __future__ import annotations

import logging

QUIET_CONSOLE_ENV = "IM2FLOW_QUIET_CONSOLE"
"""Set (to "1") by the CLI when the console shows warnings and errors only; local workers inherit it."""

CONSOLE_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
CONSOLE_DATE_FORMAT = "%H:%M:%S"


class OneLineFormatter(logging.Formatter):
    """A console format without tracebacks: the record's line, and a pointer to where the traceback is."""

    def __init__(self, format: str | None = CONSOLE_FORMAT, datefmt: str | None = CONSOLE_DATE_FORMAT) -> None:
        super().__init__(format, datefmt)  # dictConfig passes `format`, not `fmt`

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record) + (" (traceback in the log file)" if saved[0] else "")
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def quiet_dask_console() -> None:
    """Give the console handlers of Dask's `distributed` logger (in this process) the one-line format."""
    for handler in logging.getLogger("distributed").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setFormatter(OneLineFormatter())
