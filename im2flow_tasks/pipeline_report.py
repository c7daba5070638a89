"""The pipeline's headline: its stages and their time, the flow table, recognition, per-split results, links."""

from __future__ import annotations

from collections.abc import Mapping

from im2flow_tasks.summaries import SplitsSummary, StageReport, StageSummary, TrainSummary
from im2flow_tasks.tracking import ui_model_url, ui_run_url


def summary_markdown(run_name: str, report: list[StageReport], results: Mapping[str, StageSummary],
                     splits: SplitsSummary | None, run_id: str, tracking_uri: str, experiment_id: str) -> str:
    """The pipeline's headline as Markdown: stages and their time, registered models, per-split results, the
    flow table and recognition (of the single-split run), with links into MLflow's UI."""
    lines = [f"# {run_name}", "", f"MLflow parent run `{run_id}` in `{tracking_uri}`: "
             f"[open in MLflow's UI]({ui_run_url(tracking_uri, experiment_id, run_id)}).", "",
             "| stage | status | seconds |", "|---|---|---|"]
    lines += [f"| {r.stage} | {r.status} | {r.seconds} |" for r in report]
    for train in (s for s in results.values() if isinstance(s, TrainSummary) and s.model_version):
        name = train.model_uri.removeprefix("models:/").split("@")[0]
        lines += ["", f"Registered model: `{train.model_uri}`, version {train.model_version} "
                  f"([open in MLflow's UI]({ui_model_url(tracking_uri, name, train.model_version)}))."]
    if splits is not None:
        lines += ["", "## Per official split, and their mean ± std", "", splits.markdown]
    for label, title in (("evaluate", "Flow prediction"), ("recognize", "Static-image action recognition")):
        if label in results:
            lines += ["", f"## {title}", "", getattr(results[label], "markdown")]
    return "\n".join(lines)
