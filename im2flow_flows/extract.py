"""The extract flow: every ok video of the manifest into the flow store of this configuration."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import dask
from prefect import flow, get_run_logger

from im2flow_core.optical_flow import FlowAlgorithm
from im2flow_services.preflight import check_gpu_workers
from im2flow_storage.flow_store import create_flow_store
from im2flow_storage.manifest import read_manifest
from im2flow_storage.reports import write_extract_report
from im2flow_tasks.batch_progress import gather_batches
from im2flow_tasks.batching import extract_batches
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.extract import crashed_outcomes, extract_videos, library_versions
from im2flow_tasks.previews import flow_previews_markdown
from im2flow_tasks.run_labels import publish_markdown, publish_table
from im2flow_tasks.summaries import ExtractSummary


def _gpu_annotation(config: ExtractConfig) -> contextlib.AbstractContextManager:
    """On an external Dask cluster, tvl1-torch with `device: cuda` asks for one `GPU` worker resource per task.

    Start GPU workers with `dask worker ... --resources GPU=1` (one per GPU), so each GPU runs one
    video at a time. `auto` asks for nothing: it resolves on whichever worker runs the task (CUDA if
    that worker has a GPU). A local cluster declares no resources, so nothing is annotated there.
    """
    if config.algorithm is FlowAlgorithm.tvl1_torch and config.device == "cuda" and config.dask_address:
        return dask.annotate(resources={"GPU": 1})
    return contextlib.nullcontext()


def _task_name(batch: list[dict[str, Any]]) -> str:
    """`video_id`, or `first_id+N` for a batch of N + 1 videos (the task run's name in the UI)."""
    return batch[0]["video_id"] + (f"+{len(batch) - 1}" if len(batch) > 1 else "")


@flow(name="extract", flow_run_name="extract-{config.algorithm.value}", log_prints=True, persist_result=False)
def extract_flow(work_dir: str, config: ExtractConfig = ExtractConfig(),
                 show_progress: bool = False) -> ExtractSummary:
    """Extract flow for the manifest's ok videos into `work_dir`/flows/<algorithm>-<fingerprint>.zarr.

    Complete videos whose source file is unchanged are skipped; partial or changed ones are redone.
    A video that fails is recorded (report Parquet, artifact) and the rest complete. Returns a summary.
    """
    logger = get_run_logger()
    started = time.perf_counter()
    if config.algorithm is FlowAlgorithm.tvl1_torch and config.device == "cuda":
        # No GPU to run on: say so before any work starts, instead of tasks waiting forever for one.
        if config.dask_address:
            check_gpu_workers(config.dask_address)
        else:
            from im2flow_core.devices import resolve_device
            resolve_device("cuda")
    rows = [r for r in read_manifest(work_dir) if r["status"] == "ok"]
    store_config = config.store_config()
    store = create_flow_store(work_dir, store_config, library_versions())
    complete = store.complete_videos({r["video_id"]: (r["size_bytes"], r["mtime"]) for r in rows})
    todo = [r for r in rows if r["video_id"] not in complete]
    batches = extract_batches(todo, config)
    logger.info("store %s: %d ok videos, %d already complete, %d to extract in %d tasks",
                store.url, len(rows), len(rows) - len(todo), len(todo), len(batches))
    with _gpu_annotation(config):
        futures = [extract_videos.with_options(retries=config.retries, retry_delay_seconds=1).submit(
            store.url, batch, store_config, config.shard_frames, _task_name(batch), config.compute_options())
            for batch in batches]
    outcomes = gather_batches(dict(zip(futures, batches)), f"extracting {config.algorithm.value} flow",
                              show_progress, lambda batch, exc: crashed_outcomes(store, batch, exc))
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o["status"] != "complete"]
    n_flows = sum(o["n_flows"] for o in outcomes)
    report = write_extract_report(store.url, outcomes) if outcomes else None
    summary = ExtractSummary(store=store.url, fingerprint=store.fingerprint, videos_ok=len(rows),
                             skipped_complete=len(rows) - len(todo), extracted=len(outcomes) - len(failed),
                             failed=len(failed), frames=sum(o["n_frames"] for o in outcomes), flows=n_flows,
                             seconds=round(elapsed, 2), flows_per_s=round(n_flows / elapsed, 2) if elapsed else 0.0,
                             report=report)
    publish_table("extract-summary", summary.rows(), work_dir, "Extraction summary")
    done = [o["video_id"] for o in outcomes if o["status"] == "complete"]
    if done:
        previews = flow_previews_markdown(store, sorted(done)[:: max(1, len(done) // 6)])
        publish_markdown("extract-flow-previews", previews, work_dir, "Frames and their flow")
    if failed:
        publish_table("extract-failures", [{"video_id": o["video_id"], "error": o["error"]} for o in failed],
                      work_dir, f"{len(failed)} videos failed")
        for o in failed:
            logger.warning("failed %s: %s", o["video_id"], o["error"])
    return summary
