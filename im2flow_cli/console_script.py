"""The `im2flow` console script: spawns Prefect's temporary API first, then imports and runs the CLI.

The temporary API takes seconds to boot (im2flow_services.prefect_api); spawned before the CLI imports
Prefect, torch and Dask, it boots meanwhile. Only for commands that run flows (not for `--help`);
the CLI then adopts it, or stops it if Prefect's settings name a server.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of `im2flow` (pyproject's [project.scripts])."""
    from im2flow_cli.options import (  # light; sets the environment defaults the API reads
        START_API_EARLY,
        starts_api_early,
    )

    args = sys.argv[1:]
    command = next((a for a in args if not a.startswith("-")), None)
    if starts_api_early(START_API_EARLY, command, args):
        from im2flow_services.prefect_api import boot_before_settings

        boot_before_settings()
    from im2flow_cli.app import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
