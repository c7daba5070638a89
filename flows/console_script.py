"""The `im2flow` console script: spawns Prefect's temporary API first, then imports and runs the CLI.

The temporary API takes seconds to boot (flows.temporary_api); spawned before the CLI imports
Prefect, torch and Dask, it boots meanwhile. Only for commands that run flows (not for `--help`);
the CLI then adopts it, or stops it if Prefect's settings name a server.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of `im2flow` (pyproject's [project.scripts])."""
    from flows.cli_base import START_API_EARLY, starts_api_early  # light; sets the environment defaults the API reads

    args = sys.argv[1:]
    command = next((a for a in args if not a.startswith("-")), None)
    if starts_api_early(START_API_EARLY, command, args):
        from flows.temporary_api import boot_before_settings

        boot_before_settings()
    from flows.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
