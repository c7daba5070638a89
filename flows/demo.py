"""The demo: generate the built-in dataset, then ingest, extract, train, predict, evaluate, recognize and rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from flows.evaluate import evaluate_flow, potential_flow
from flows.extract import extract_flow
from flows.ingest import ingest_flow
from flows.predict import predict_images
from flows.recognize import recognize_flow
from flows.train import train_flow
from storage import open_flow_store
from storage.images import write_rgb_image
from storage.paths import predictions_url
from storage.demo_dataset import DEMO_DATASET_VERSION, write_demo_dataset
from tasks.config import EvalConfig, ExtractConfig, IngestConfig, RecognizeConfig, TrainConfig
from tasks.models import load_generator_export

DEMO_EXTRACT = {"short_side": 64}
"""The demo runs at 64 px (DESIGN.md, compute budget): real datasets keep the 256 px default."""

DEMO_TRAIN = {
    "generator": {"depth": 6, "ngf": 32, "input_size": 64, "n_dropout": 0}, "load_size": 72, "epochs": 14,
    "patience": 4, "loss": {"magnitude_norm": "l1"},
    "phi": {"base_width": 16, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 4, "patience": 3},
}
"""A small U-Net and φ for CPUs; the paper's configuration (depth 8, ngf 64, 256 px) is the default.

No dropout in G: on the demo data (about 1.8k training frames) dropout 0.5 in the inner decoder
blocks lowered the direction similarity on the foreground (DS-FG 0.28 with it, 0.36 without, at
equal steps). An L1 penalty on the magnitude channel: with the paper's L2, G predicts the mean
magnitude where it is unsure whether something moves (a halo around figures, faint motion on the
87 % of still pixels) and loses all-pixel EPE to zero flow (0.292 vs 0.271 after 30 epochs); L1's
median is 0 there (measured at equal steps: EPE 0.241 vs zero flow's 0.267, DS unchanged).
"""

_DEMO_STREAM = {"base_width": 32, "blocks": (1, 1, 1, 1), "stem": "imagenet", "epochs": 6, "patience": 3}
DEMO_RECOGNIZE = {"seeds": (0, 1, 2), "frames_per_video": 3, "appearance": _DEMO_STREAM, "motion": _DEMO_STREAM}
"""Small recognition streams for CPUs, three seeds (the accuracy table reports mean ± std)."""


@task(name="generate-demo-dataset")
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


@task(name="predict-held-out-frames")
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


@flow(name="demo", log_prints=True)
def demo_flow(work_dir: str, seed: int = 0, dask_address: str | None = None,
              show_progress: bool = False) -> dict[str, Any]:
    """Generate the demo dataset in `work_dir`/dataset, then ingest, extract, train and predict."""
    logger = get_run_logger()
    dataset = generate_demo_dataset(str(Path(work_dir) / "dataset"), seed)
    ingest = ingest_flow(dataset, work_dir, IngestConfig(dask_address=dask_address), show_progress=show_progress)
    extract = extract_flow(work_dir, ExtractConfig(dask_address=dask_address, **DEMO_EXTRACT),
                           show_progress=show_progress)
    train = train_flow(work_dir, TrainConfig(seed=seed, **DEMO_TRAIN))
    predictions = predict_held_out(work_dir, train["export"])
    evaluation = evaluate_flow(work_dir, EvalConfig(model=train["export"]))
    recognition = recognize_flow(work_dir, RecognizeConfig(model=train["export"], **DEMO_RECOGNIZE))
    potential = potential_flow(work_dir, None, EvalConfig(model=train["export"]))
    logger.info("the demo ran at 64 px with a small U-Net (CPU budget); real datasets default to the paper's "
                "256 px, depth-8, ngf-64 configuration")
    return {"dataset": dataset, "ingest": ingest, "extract": extract, "train": train, "predictions": predictions,
            "evaluation": evaluation, "recognition": recognition, "potential": potential}
