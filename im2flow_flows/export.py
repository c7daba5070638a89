"""The export flow: a flow store's videos, or G's hallucinated flow, as mmaction2/TSN rawframes folders."""

from __future__ import annotations

import time

from prefect import flow

from im2flow_storage.rawframes import check_export_root, local_root
from im2flow_tasks.batch_progress import gather_batches
from im2flow_tasks.batching import batches_by_work
from im2flow_tasks.export import export_videos
from im2flow_tasks.export_runs import export_hallucinated, finish_export, plan_store_export
from im2flow_tasks.interop_config import ExportConfig
from im2flow_tasks.outcomes import publish_outcome
from im2flow_tasks.run_labels import run_name
from im2flow_tasks.summaries import ExportSummary


@flow(name="export", flow_run_name=lambda: run_name("export", "out"), log_prints=True, persist_result=False)
def export_flow(work_dir: str | None, out: str, config: ExportConfig = ExportConfig(), images: list[str] | None = None,
                show_progress: bool = False) -> ExportSummary:
    """Export to `out` (a local folder) in the rawframes layout (im2flow_storage.rawframes).

    True flow: every complete video of the work dir's flow store, in parallel (Prefect tasks of about
    `frames_per_task` frames). Hallucinated (`config.hallucinated`): G's flow for each frame of the
    store's videos (of `config.split`), or for still `images` (files or folders), batched on G's device.
    Finished videos are skipped on a re-run; annotation lists cover every finished video. Returns a summary.
    """
    started = time.perf_counter()
    root = local_root(out)
    check_export_root(root, config.overwrite)
    root.mkdir(parents=True, exist_ok=True)
    if config.hallucinated:
        outcomes, classes = export_hallucinated(work_dir, root, config, images, show_progress)
        summary = finish_export(root, config, outcomes, classes, started, "hallucinated")
    else:
        if images:
            raise ValueError("still images can only be exported with hallucinated flow (--hallucinated)")
        if work_dir is None:
            raise ValueError("exporting a flow store needs --work-dir")
        plan = plan_store_export(work_dir, root, config)
        batches = batches_by_work(plan.todo, lambda v: plan.frames[v["video_id"]], config.frames_per_task)
        futures = {export_videos.with_options(retries=config.retries, retry_delay_seconds=1).submit(
            plan.store_url, batch, str(root), config.bound_px, config.jpeg_quality,
            batch[0]["video_id"] + (f"+{len(batch) - 1}" if len(batch) > 1 else ""), config.overwrite): batch
            for batch in batches}
        outcomes = gather_batches(futures, "exporting rawframes", show_progress, lambda batch, exc: [
            {**v, "status": "failed", "error": f"task crashed: {exc!r}", "n_frames": 0, "n_flows": 0, "n_clipped": 0}
            for v in batch])
        summary = finish_export(root, config, plan.unsafe + outcomes, sorted({v["label"] for v in plan.videos}),
                                started, "flow", plan.store_url, plan.fingerprint)
    publish_outcome("export", summary, str(root), "Rawframes export", "not exported")
    return summary
