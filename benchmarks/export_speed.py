"""Rawframes export and import on the demo's flow store, measured side by side in one run.

Prints:
1. frames/s of `im2flow_tasks.export.export_store_video` (what `im2flow export` runs per video: read the
   store, quantize, write JPEGs into a .partial folder, rename, record) against a bare loop that
   reads the same store and writes the same JPEGs straight into place, both in one process;
2. the same with the whole `export` flow on a local Dask cluster of W workers (Prefect tasks
   included, on one Prefect API started before timing) against the bare loop in W processes;
3. the `import-flow` rate, and how exactly the import reproduces the export: the largest end-point
   error over every flow pixel that was not clipped (bound: the store codec's 0.085 px), and the
   error of the exported flow against the store's (bound: b/255 px rounding + JPEG loss).
Target (issue 16): export ≥ 0.8× the bare loop, import within the stated bound on every pixel.

Run: python benchmarks/export_speed.py [--work-dir W_OF_A_DEMO_RUN] [--workers 2]
Without --work-dir the demo dataset is generated and extracted with the demo preset first (minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from im2flow_core.rawframe_flow import flow_to_gray, gray_to_flow
from im2flow_flows.export import export_flow
from im2flow_flows.import_rawframes import import_flow
from im2flow_services.dask_cluster import dask_scheduler, task_runner
from im2flow_storage import open_flow_store
from im2flow_storage.rawframes import FLOW_TEMPLATE, RGB_TEMPLATE, frame_dir_of, read_image, write_jpeg
from im2flow_tasks.export import export_store_video
from im2flow_tasks.interop_config import ExportConfig, ImportConfig

BOUND, QUALITY = 20.0, 95


def build_demo_store(work_dir: Path, workers: int) -> None:
    """The demo's dataset, ingested and extracted with the demo preset (as `im2flow demo` does)."""
    from im2flow_flows.extract import extract_flow
    from im2flow_flows.ingest import ingest_flow
    from im2flow_storage.demo_dataset import write_demo_dataset
    from im2flow_tasks.config import ExtractConfig, IngestConfig
    from im2flow_tasks.presets import DEMO_EXTRACT

    dataset = write_demo_dataset(work_dir / "dataset")
    with dask_scheduler(workers, None) as address:
        ingest_flow.with_options(task_runner=task_runner(address))(str(dataset), str(work_dir), IngestConfig())
        extract_flow.with_options(task_runner=task_runner(address))(str(work_dir), ExtractConfig(**DEMO_EXTRACT))


def bare_export(store_url: str, video_ids: list[str], labels: list[str], out: str) -> int:
    """Read each video and write the same JPEGs straight into place; returns frames written."""
    store, frames = open_flow_store(store_url), 0
    for video_id, label in zip(video_ids, labels):
        folder = Path(out) / frame_dir_of(video_id, label)
        folder.mkdir(parents=True, exist_ok=True)
        for t, rgb in enumerate(store.iter_rgb(video_id), start=1):
            write_jpeg(folder / RGB_TEMPLATE.format(t), rgb, QUALITY)
            frames += 1
        for t, flow in enumerate(store.iter_flow(video_id), start=1):
            x, y, _ = flow_to_gray(flow, BOUND)
            write_jpeg(folder / FLOW_TEMPLATE.format("x", t), x, QUALITY)
            write_jpeg(folder / FLOW_TEMPLATE.format("y", t), y, QUALITY)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", help="work dir of a demo run (default: build the demo's store first)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    # One Prefect API for the whole run, as a deployment has: otherwise each flow call would start
    # (and time) a temporary server of its own.
    with prefect_test_harness(server_startup_timeout=180), \
            tempfile.TemporaryDirectory(prefix="im2flow-export-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        work = Path(args.work_dir) if args.work_dir else tmp / "demo"
        if not args.work_dir:
            started = time.perf_counter()
            build_demo_store(work, args.workers)
            print(f"built the demo's store in {time.perf_counter() - started:.0f} s")
        store = open_flow_store(str(work))
        records = store.records(complete_only=True)
        ids, labels = [r.video_id for r in records], [r.label for r in records]
        n_frames = sum(r.n_frames for r in records)
        print(f"store {store.url}: {len(records)} videos, {n_frames} frames, "
              f"{records[0].width}×{records[0].height} px")

        # 1. One process each, three rounds in alternating order, each timing starting from synced disks:
        # writing thousands of small files leaves dirty pages whose write-back would land on the next timing.
        rates: dict[str, list[float]] = {"bare": [], "export": []}
        for round_, order in enumerate((("bare", "export"), ("export", "bare"), ("bare", "export"))):
            for name in order:
                out = tmp / f"{name}-{round_}"
                out.mkdir()
                os.sync()
                started = time.perf_counter()
                if name == "bare":
                    bare_export(store.url, ids, labels, str(out))
                else:
                    for vid, label in zip(ids, labels):
                        export_store_video(store, {"video_id": vid, "label": label, "split": "",
                                                   "frame_dir": frame_dir_of(vid, label)}, str(out), BOUND, QUALITY)
                rates[name].append(n_frames / (time.perf_counter() - started))
                shutil.rmtree(out)
        bare, export = max(rates["bare"]), max(rates["export"])
        print(f"one process, best of 3: bare loop {bare:.0f} frames/s, export_store_video {export:.0f} frames/s "
              f"(ratio {export / bare:.2f}; target ≥ 0.8); all runs: bare {[round(r) for r in rates['bare']]}, "
              f"export {[round(r) for r in rates['export']]}")

        # 2. W processes: the bare loop over a process pool vs the export flow on a local Dask cluster.
        out = tmp / "bare-pool"
        chunks = [list(range(i, len(ids), args.workers)) for i in range(args.workers)]
        os.sync()
        started = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(bare_export, [store.url] * args.workers, [[ids[i] for i in c] for c in chunks],
                          [[labels[i] for i in c] for c in chunks], [str(out)] * args.workers))
        bare_pool = n_frames / (time.perf_counter() - started)
        shutil.rmtree(out)
        raw = tmp / "raw"
        with dask_scheduler(args.workers, None) as address:
            # Twice: the first run pays the workers' imports and the first Prefect task runs (cold), the
            # second is what a long-lived cluster does (warm); each exports every video.
            for label, target in (("cold cluster", tmp / "raw-cold"), ("warm cluster", raw)):
                os.sync()
                started = time.perf_counter()
                summary = export_flow.with_options(task_runner=task_runner(address))(str(work), str(target),
                                                                                    ExportConfig())
                flow_rate = n_frames / (time.perf_counter() - started)
                print(f"{args.workers} processes, {label}: bare loop {bare_pool:.0f} frames/s, export flow "
                      f"{flow_rate:.0f} frames/s incl. Prefect and Dask (ratio {flow_rate / bare_pool:.2f}); "
                      f"clipped values {summary['clipped_values']}")

            # 3. Import the export back and compare every pixel.
            imported_work = tmp / "imported"
            started = time.perf_counter()
            result = import_flow.with_options(task_runner=task_runner(address))(str(raw), str(imported_work),
                                                                                ImportConfig())
            print(f"import-flow: {n_frames / (time.perf_counter() - started):.0f} frames/s, "
                  f"{result['imported']} imported, {result['failed']} failed, numbering {result['numbering']}")
        imported = open_flow_store(str(imported_work))
        worst_import = worst_export = 0.0
        unclipped = clipped = 0
        export_errors = []
        for vid, label in zip(ids, labels):
            folder = raw / frame_dir_of(vid, label)
            for t, (true, back) in enumerate(zip(store.iter_flow(vid), imported.iter_flow(frame_dir_of(vid, label))),
                                             start=1):
                x = read_image(folder / FLOW_TEMPLATE.format("x", t), grey=True)
                y = read_image(folder / FLOW_TEMPLATE.format("y", t), grey=True)
                exported = gray_to_flow(x, y, BOUND)
                inside = (np.abs(true) <= BOUND).all(axis=-1)
                unclipped += int(inside.sum())
                clipped += int((~inside).sum())
                worst_import = max(worst_import, float(np.linalg.norm(back - exported, axis=-1)[inside].max(initial=0)))
                worst_export = max(worst_export, float(np.abs(exported - true)[inside].max(initial=0)))
                export_errors.append(np.abs(exported - true)[inside].ravel())
        print(f"import vs exported JPEGs: largest end-point error {worst_import:.4f} px over {unclipped} unclipped "
              f"pixels (bound 0.085; {clipped} clipped pixels left out)")
        errors = np.concatenate(export_errors)
        print(f"exported vs store flow (b/255 = {BOUND / 255:.3f} px rounding + JPEG q{QUALITY}), per component: "
              f"mean {errors.mean():.3f} px, 99th percentile {np.percentile(errors, 99):.3f}, "
              f"99.9th {np.percentile(errors, 99.9):.3f}, largest {worst_export:.3f} (JPEG ringing at motion edges)")


if __name__ == "__main__":
    main()
