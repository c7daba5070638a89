"""What the CLI prints: stage summaries and the pipeline's tables, with rich."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def print_summary(title: str, summary: Any) -> None:
    """A two-column table of a stage summary (`im2flow_tasks.summaries`; its failures, if any, are printed by
    `print_failures`)."""
    table = Table(title=title, show_header=False)
    for key, value in summary.model_dump(exclude={"failures", "files"}).items():
        table.add_row(key, str(value))
    console.print(table)


def print_failures(failures: Sequence[Any], report: str | None, limit: int = 20) -> None:
    """Up to `limit` items that failed, each with its reason (`Failure`s, or dicts with item and error), then
    where the full list is."""
    for failure in failures[:limit]:
        item, error = (failure["item"], failure["error"]) if isinstance(failure, dict) else (failure.item,
                                                                                              failure.error)
        console.print(f"[yellow]skipped[/yellow] {item}: {error}", soft_wrap=True)
    if len(failures) > limit:
        console.print(f"… and {len(failures) - limit} more")
    if failures and report:
        console.print(f"every outcome, with its reason: {report}")


def print_pipeline(result: Any) -> None:
    """The pipeline's stage table (an `im2flow_tasks.summaries.PipelineSummary`), the flow and recognition
    tables and the potential's ρ."""
    table = Table("stage", "status", "seconds", title="pipeline")
    for row in result.stages:
        table.add_row(row.stage, row.status, str(row.seconds))
    console.print(table)
    results = result.results
    if result.splits is not None:
        console.print("\n[bold]per official split, and their mean ± std[/bold] (each split's tables are in its "
                      "stage summaries and MLflow runs)")
        console.print(result.splits.markdown, soft_wrap=True)
    if "evaluate" in results:
        console.print("\n[bold]flow prediction[/bold] (the paper's table; lower EPE, higher DS/OS are better)")
        console.print(results["evaluate"].markdown, soft_wrap=True)
    if "recognize" in results:
        console.print("\n[bold]static-image action recognition[/bold] (mean ± std over seeds)")
        console.print(results["recognize"].markdown, soft_wrap=True)
    if "potential" in results:
        for r in results["potential"].agreement:
            if r["spearman"] == r["spearman"]:  # NaN: the method gives every image one value
                console.print(f"motion potential vs true mean motion, {r['method']}: Spearman ρ {r['spearman']:.3f} "
                              f"[{r['spearman_low']:.3f}, {r['spearman_high']:.3f}], Kendall τ {r['kendall']:.3f} "
                              f"[{r['kendall_low']:.3f}, {r['kendall_high']:.3f}] (95 % bootstrap)")
    console.print(f"MLflow parent run {result.run_id} (experiment {result.experiment}) in "
                  f"{result.tracking_uri}; compare two runs with: im2flow compare RUN_A RUN_B")
    from im2flow_tasks.tracking import ui_run_url

    url = ui_run_url(result.tracking_uri, result.experiment_id, result.run_id)
    served = result.tracking_uri.startswith(("http://", "https://"))
    how = "" if served else f" (`mlflow ui --backend-store-uri {result.tracking_uri}`)"
    console.print(f"in MLflow's UI{how}: {url}", soft_wrap=True)
