"""The demo: generate the built-in dataset, run the whole pipeline on it (demo preset), predict held-out frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from im2flow_flows.pipeline import pipeline_flow
from im2flow_storage.paths import predictions_url
from im2flow_tasks.demo import generate_demo_dataset, predict_held_out
from im2flow_tasks.run_labels import publish_markdown, run_name
from im2flow_tasks.summaries import DemoSummary, TrainSummary


@flow(name="demo", flow_run_name=lambda: run_name("demo", "work_dir"), log_prints=True, persist_result=False)
def demo_flow(work_dir: str, seed: int = 0, overrides: dict[str, dict[str, Any]] | None = None,
              show_progress: bool = False) -> DemoSummary:
    """Generate the demo dataset in `work_dir`/dataset, run the pipeline (preset `demo`) and predict."""
    logger = get_run_logger()
    dataset = generate_demo_dataset(str(Path(work_dir) / "dataset"), seed)
    overrides = {**(overrides or {})}
    overrides["train"] = {"seed": seed, **overrides.get("train", {})}
    pipeline = pipeline_flow(dataset, work_dir, None, overrides, "demo", show_progress)
    predictions = predict_held_out(work_dir, pipeline.get(TrainSummary).export, wait_for=[pipeline])
    # The top-level run is what the Prefect UI opens: it carries the headline, not only its subflows.
    publish_markdown("demo-summary", pipeline.markdown + f"\n\nHeld-out predictions: `{predictions_url(work_dir)}` "
                     f"({len(predictions)} images).", work_dir, "The demo's results")
    logger.info("the demo ran at 64 px with a small U-Net (CPU budget); real datasets default to the paper's "
                "256 px, depth-8, ngf-64 configuration")
    return DemoSummary(dataset=dataset, pipeline=pipeline, predictions=predictions)
