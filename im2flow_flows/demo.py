"""The demo: generate the built-in dataset, run the whole pipeline on it (demo preset), predict held-out frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from im2flow_flows.pipeline import pipeline_flow
from im2flow_storage import open_flow_store
from im2flow_storage.demo_dataset import DEMO_DATASET_VERSION, write_demo_dataset
from im2flow_storage.images import write_rgb_image
from im2flow_storage.paths import predictions_url
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.predict import predict_images
from im2flow_tasks.run_labels import publish_markdown, run_name


@task(name="generate-demo-dataset", task_run_name="generate-demo-dataset", persist_result=False)
def generate_demo_dataset(root: str, seed: int) -> str:
    """Write the procedurally generated demo videos and split files under `root`, unless already there.

    Rewriting the files would change their mtimes and make every later stage redo its work.
    """
    marker = Path(root) / ".im2flow-demo"
    stamp = f"seed={seed} version={DEMO_DATASET_VERSION}"
    if marker.is_file() and marker.read_text() == stamp:
        return root
    write_demo_dataset(root, seed=seed)
    marker.write_text(stamp)
    return root


@task(name="predict-held-out-frames", task_run_name="predict-held-out-frames", persist_result=False)
def predict_held_out(work_dir: str, model_path: str, n_videos: int = 8) -> list[dict[str, Any]]:
    """Predict flow for the middle frame of one test video per class; writes `work_dir`/predictions."""
    store = open_flow_store(work_dir)
    chosen: dict[str, str] = {}
    for record in store.records(complete_only=True):
        if record.split == "test":
            chosen.setdefault(record.label, record.video_id)
    inputs = Path(predictions_url(work_dir)) / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, video_id in sorted(chosen.items())[:n_videos]:
        rgb = store.read_rgb(video_id, store.record(video_id).n_frames // 2)  # type: ignore[union-attr]
        path = inputs / f"{label}.png"
        write_rgb_image(path, rgb)
        paths.append(str(path))
    return predict_images(paths, load_generator_export(model_path), predictions_url(work_dir))


@flow(name="demo", flow_run_name=lambda: run_name("demo", "work_dir"), log_prints=True, persist_result=False)
def demo_flow(work_dir: str, seed: int = 0, overrides: dict[str, dict[str, Any]] | None = None,
              show_progress: bool = False) -> dict[str, Any]:
    """Generate the demo dataset in `work_dir`/dataset, run the pipeline (preset `demo`) and predict."""
    logger = get_run_logger()
    dataset = generate_demo_dataset(str(Path(work_dir) / "dataset"), seed)
    overrides = {**(overrides or {})}
    overrides["train"] = {"seed": seed, **overrides.get("train", {})}
    pipeline = pipeline_flow(dataset, work_dir, None, overrides, "demo", show_progress)
    results = pipeline["results"]
    predictions = predict_held_out(work_dir, results["train"]["export"], wait_for=[pipeline])
    # The top-level run is what the Prefect UI opens: it carries the headline, not only its subflows.
    publish_markdown("demo-summary", pipeline["markdown"] + f"\n\nHeld-out predictions: `{predictions_url(work_dir)}` "
                     f"({len(predictions)} images).", work_dir, "The demo's results")
    logger.info("the demo ran at 64 px with a small U-Net (CPU budget); real datasets default to the paper's "
                "256 px, depth-8, ngf-64 configuration")
    return {"dataset": dataset, "pipeline": pipeline, **results, "predictions": predictions}
