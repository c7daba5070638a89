"""The demo: generate the built-in dataset, then ingest and extract it with demo-sized settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from tasks.config import ExtractConfig, IngestConfig
from flows.extract import extract_flow
from flows.ingest import ingest_flow
from storage.demo_dataset import write_demo_dataset

DEMO_EXTRACT = {"short_side": 64}
"""The demo runs at 64 px (DESIGN.md, compute budget): real datasets keep the 256 px default."""


@task(name="generate-demo-dataset")
def generate_demo_dataset(root: str, seed: int) -> str:
    """Write the procedurally generated demo videos and split files under `root`."""
    return str(write_demo_dataset(root, seed=seed))


@flow(name="demo", log_prints=True)
def demo_flow(work_dir: str, seed: int = 0, dask_address: str | None = None,
              show_progress: bool = False) -> dict[str, Any]:
    """Generate the demo dataset in `work_dir`/dataset, then run ingest and extract on it."""
    logger = get_run_logger()
    dataset = generate_demo_dataset(str(Path(work_dir) / "dataset"), seed)
    ingest = ingest_flow(dataset, work_dir, IngestConfig(dask_address=dask_address), show_progress=show_progress)
    extract = extract_flow(work_dir, ExtractConfig(dask_address=dask_address, **DEMO_EXTRACT),
                           show_progress=show_progress)
    logger.info("demo extraction ran at %d px short side (a small size for CPUs; real datasets default to 256)",
                DEMO_EXTRACT["short_side"])
    return {"dataset": dataset, "ingest": ingest, "extract": extract}
