"""The read-only commands: `im2flow compare` (two MLflow runs side by side) and `im2flow inspect` (flow stores)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from im2flow_cli.console_output import console
from im2flow_cli.options import WorkDir, _fail, _preflight, app


@app.command()
def compare(run_a: Annotated[str, typer.Argument(help="MLflow run id or run name")],
            run_b: Annotated[str, typer.Argument(help="MLflow run id or run name")],
            work_dir: Annotated[Optional[str], typer.Option("--work-dir", "-w", help="for its SQLite store")] = None,
            tracking_uri: Annotated[Optional[str], typer.Option(help="default: MLFLOW_TRACKING_URI, else "
                                                                "WORK_DIR/mlflow.db")] = None,
            all_params: Annotated[bool, typer.Option("--all-params", help="show equal params too")] = False) -> None:
    """Compare two runs (e.g. two pipeline runs) side by side: tags, differing params, metrics."""
    from im2flow_cli.compare import compare_runs
    try:
        from im2flow_tasks.tracking import existing_tracking_uri
        uri = existing_tracking_uri(work_dir, tracking_uri)
        _preflight(uri, prefect=False)  # compare runs no flow
        result = compare_runs(uri, run_a, run_b, all_params)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))
    (id_a, name_a), (id_b, name_b) = result["runs"]
    head_a, head_b = f"a: {name_a} ({id_a[:8]})", f"b: {name_b} ({id_b[:8]})"
    for title, rows, key in (("tags", result["tags"], "tag"), ("params that differ" if not all_params else "params",
                                                                 result["params"], "param")):
        table = Table(key, head_a, head_b, title=title)
        for row in rows:
            table.add_row(row[key], row["a"], row["b"])
        console.print(table)
    table = Table("metric", head_a, head_b, "b − a", title="metrics")
    for row in result["metrics"]:
        table.add_row(row["metric"], row["a"], row["b"], row["b − a"])
    console.print(table)


@app.command()
def inspect(work_dir: WorkDir, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show each flow store's configuration and the videos it holds."""
    from im2flow_cli.inspect import describe_work_dir
    described = describe_work_dir(work_dir)
    if as_json:
        print(json.dumps(described, indent=2, default=str))
        return
    if not described["stores"]:
        console.print(f"no flow stores under {work_dir}")
    for store in described["stores"]:
        cfg = store["config"]
        console.print(f"[bold]{store['url']}[/bold]  fingerprint {store['fingerprint']}")
        console.print(f"  algorithm {cfg['algorithm']} ({cfg['implementation']}), params {cfg['params']}")
        console.print(f"  resize {cfg['resize']}, step {cfg['step']}, frame stride {cfg['frame_stride']}, "
                      f"max frames {cfg['max_frames']}")
        console.print(f"  encoding {cfg['encoding']}")
        table = Table("video_id", "label", "split", "n_frames", "n_flows", "complete")
        for v in store["videos"]:
            table.add_row(v["video_id"], v["label"], v["split"], str(v["n_frames"]), str(v["n_flows"]),
                          "yes" if v["complete"] else "[red]no[/red]")
        console.print(table)
