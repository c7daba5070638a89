"""The demo's own tasks: write the generated dataset, and predict flow for held-out test frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from im2flow_storage import open_flow_store
from im2flow_storage.demo_dataset import DEMO_DATASET_VERSION, write_demo_dataset
from im2flow_storage.flow_store import VideoRecord
from im2flow_storage.images import write_rgb_image
from im2flow_storage.paths import predictions_url
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.predict import predict_images


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
    chosen: dict[str, VideoRecord] = {}
    for record in store.records(complete_only=True):
        if record.split == "test":
            chosen.setdefault(record.label, record)
    inputs = Path(predictions_url(work_dir)) / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, record in sorted(chosen.items())[:n_videos]:
        rgb = store.read_rgb(record.video_id, record.n_frames // 2)
        path = inputs / f"{label}.png"
        write_rgb_image(path, rgb)
        paths.append(str(path))
    return predict_images(paths, load_generator_export(model_path), predictions_url(work_dir))
