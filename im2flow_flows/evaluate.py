"""The evaluate flow: the paper's table for G and the baselines, with best and worst examples."""

from __future__ import annotations

from prefect import flow, get_run_logger

from im2flow_core.flow_metrics import PAPER_HEADERS
from im2flow_storage import open_flow_store
from im2flow_storage.paths import eval_url, split_name
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import evaluate_split
from im2flow_tasks.evaluation_report import summarize_evaluation
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.potential import format_score
from im2flow_tasks.previews import png_data_uri
from im2flow_tasks.report_runs import log_report_run
from im2flow_tasks.run_labels import publish_markdown, publish_table
from im2flow_tasks.summaries import EvaluationSummary
from im2flow_tasks.tracking import git_commit, now_ms, ready_tracking_uri


@flow(name="evaluate", flow_run_name="evaluate-{config.split}", log_prints=True, persist_result=False)
def evaluate_flow(work_dir: str, config: EvalConfig = EvalConfig(), show_progress: bool = False) -> EvaluationSummary:
    """Score G and the baselines on `config.split`; table to CSV/Markdown, Prefect and MLflow.

    `show_progress`: terminal bars (the Prefect UI always gets progress artifacts).
    """
    logger = get_run_logger()
    started_ms = now_ms()  # the MLflow run spans the work, though it is opened after it
    tracking_uri = ready_tracking_uri(work_dir, config.mlflow_tracking_uri)
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    k = min(max(config.gallery_k // 2, 1), 3)
    result = evaluate_split(store.url, config.model, work_dir, config, tracking_uri, k, show_progress)
    report = summarize_evaluation(result["rows"], result["examples"], k)
    out_dir = eval_url(work_dir, config.split, config.split_index)
    paths = write_report(out_dir, report.files, "evaluation")
    metrics = {row["method"]: {k: v for k, v in row.items() if k != "method"} for row in report.table}
    run_id = log_report_run(
        tracking_uri, config.experiment, f"evaluate-{split_name(config.split, config.split_index)}",
        {"store_fingerprint": store.fingerprint, "split": config.split, "split_index": str(config.split_index or ""),
         "model": config.model or "registry alias", "git_commit": git_commit()},
        {"frames": str(report.frames), "train_frames_for_baselines": str(result["train_frames"]),
         **{k: str(v) for k, v in config.model_dump(mode="json").items()}},
        paths, metrics["Im2Flow"], started_ms, children=metrics)
    publish_table("evaluation-table", [{"method": e["method"], **{PAPER_HEADERS.get(k, k): format_score(v)
                                                                  for k, v in e.items() if k != "method"}}
                                       for e in report.table],
                  work_dir, f"Flow prediction on the {config.split} split")
    examples = f"![examples]({png_data_uri(report.examples)})"
    publish_markdown("evaluation-report", f"# Evaluation ({config.split})\n\n{report.markdown}\n\n{examples}",
                     work_dir, "Table and best/worst examples")
    logger.info("evaluation on %d frames:\n%s", report.frames, report.markdown)
    return EvaluationSummary(table=report.table, markdown=report.markdown,
                             out_dir=out_dir, run_id=run_id, files=paths)
