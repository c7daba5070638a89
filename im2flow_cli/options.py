"""What every `im2flow` command shares: the Typer app, option types, failing clearly, preflight checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

# No internet on many clusters: telemetry would only log errors.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# On a fresh Prefect home the temporary API creates its database and runs every migration before it
# answers: 26-30 s on a busy 2-core machine, past Prefect's 20 s default (the first command failed).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# torch's OpenMP threads spin while they wait for each other; beside another busy process a thread
# that lost its core stalls the rest (G trained 3× slower on 2 cores beside one CPU-bound process,
# 47 vs 147 samples/s idle). Passive waiting: 1.65× faster there, 0.9× on an idle machine
# (benchmarks/demo_time.py). Read when torch loads, so set before any import of it; workers inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from im2flow_cli.console_output import console  # noqa: E402

app = typer.Typer(help="im2flow: motion hallucination from static images (Im2Flow, CVPR 2018).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
WorkDir = Annotated[str, typer.Option("--work-dir", "-w", help="work directory: a local path or an fsspec URL")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="YAML file with this stage's fields")]
Workers = Annotated[Optional[int], typer.Option(help="local Dask worker processes (default: one per core)")]
DaskAddress = Annotated[Optional[str], typer.Option(help="use an existing Dask scheduler, e.g. tcp://host:8786")]


def _fail(message: str) -> None:
    from rich.markup import escape

    # One line however long (no wrapping), the message as text: file names may hold `[`.
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            _fail(f"--param needs KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


C = TypeVar("C", bound=Any)


def _preflight(tracking_uri: str | None = None, dask_address: str | None = None, prefect: bool = True) -> None:
    """The services this command will use answer (im2flow_services.preflight.check_services); else
    ServiceUnreachable."""
    from im2flow_services.preflight import check_services
    check_services(tracking_uri, dask_address, prefect)


def _tracking_uri(work_dir: str | None, configured: str | None = None) -> str:
    """The MLflow tracking URI a command will use (im2flow_tasks.tracking.default_tracking_uri)."""
    from im2flow_tasks.tracking import default_tracking_uri
    return default_tracking_uri(work_dir, configured)


def _with_tracking(config: C, work_dir: str | None) -> C:
    """`config` with its tracking store resolved (`_tracking_uri`) and checked (`_preflight`) here, once: the flow
    it is handed to tracks there without resolving or checking it again."""
    uri = _tracking_uri(work_dir, config.mlflow_tracking_uri)
    _preflight(uri)
    return config.model_copy(update={"mlflow_tracking_uri": uri})


def _model_tracking_uri(model: str | None, work_dir: str | None) -> str | None:
    """The tracking store a model reference needs (None for a weights file), for the preflight."""
    from im2flow_tasks.models import is_model_file
    from im2flow_tasks.tracking import existing_tracking_uri
    return None if model and is_model_file(model) else existing_tracking_uri(work_dir)


# Commands that run Prefect flows: their INFO lines go to a log file (im2flow_cli.console_logging).
_LOGGED_COMMANDS = {"ingest", "extract", "train", "predict", "evaluate", "recognize", "potential", "pipeline",
                    "serve", "demo", "export", "import-flow"}

START_API_EARLY = "start-prefect-api-early"
"""`ctx.obj` of the console script: start Prefect's temporary API as the command starts, not when a flow
first needs it (im2flow_services.prefect_api). In-process callers (tests, notebooks) keep Prefect's own behaviour."""

# Commands whose flows need a Prefect API. Not `predict` (no flow) or `serve` (needs a server that outlives it).
EARLY_API_COMMANDS = _LOGGED_COMMANDS - {"predict", "serve"}


def starts_api_early(obj: object, name: str | None, args: list[str]) -> bool:
    """Whether the command `name` (arguments `args`), called with context object `obj`, starts the temporary API now."""
    return obj == START_API_EARLY and name in EARLY_API_COMMANDS and not {"--help", "-h"} & set(args)


@app.callback()
def _global_options(ctx: typer.Context, verbose: Annotated[bool, typer.Option(
        "--verbose", "-v",
        help="also print every task's log lines (always in WORK_DIR/logs and the Prefect UI)")] = False
                    ) -> None:
    """Options for every command, given before its name: `im2flow --verbose extract ...`."""
    name = ctx.invoked_subcommand
    if name not in _LOGGED_COMMANDS:
        return
    from im2flow_cli.console_logging import configure_logging
    log_file = configure_logging(_work_dir_of(ctx, name), name, verbose or bool(os.environ.get("IM2FLOW_VERBOSE")))
    if log_file is not None:
        console.print(f"[dim]log: {log_file}[/dim]", soft_wrap=True)
    import sys

    if starts_api_early(ctx.obj, name, sys.argv[1:]):
        from im2flow_services.prefect_api import start_early

        # Boots while the command imports and sets up; the preflight waits for it.
        if start_early() is not None:
            announce_first_run()
    elif name in EARLY_API_COMMANDS and not os.environ.get("PREFECT_API_URL"):
        announce_first_run()  # Prefect starts its temporary API when the flow needs it, unless one is configured


def announce_first_run() -> None:
    """Say so when Prefect's temporary API is about to create its database (a fresh Prefect home): one line."""
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    if not (home / "prefect.db").exists():
        console.print(f"[dim]first run: preparing Prefect's local database in {home} (about half a minute)[/dim]",
                      soft_wrap=True)


def _work_dir_of(ctx: typer.Context, name: str) -> str | None:
    """The work dir the command `name` was given (`--work-dir`/`-w`), or its default; None if it has none."""
    import sys

    args = sys.argv[1:]  # click has consumed the command's arguments before this callback runs
    for i, arg in enumerate(args):
        if arg in ("--work-dir", "-w") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--work-dir="):
            return arg.split("=", 1)[1]
    command = ctx.command.get_command(ctx, name)  # type: ignore[attr-defined]
    for param in getattr(command, "params", []):
        if param.name == "work_dir" and isinstance(param.default, str):
            return param.default
    return None
