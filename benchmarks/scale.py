"""The whole pipeline on a UCF-101-shaped dataset at two sizes in one run: does each stage's cost per video stay flat?

Generates N videos shaped like UCF-101 (101 classes, clips in groups, `ucfTrainTestlist/` split
files; tiny clips: `--frames` frames of `--size` px), and runs every stage on them with cheap
settings (DIS flow, one epoch of small networks, one or two frames a video), first on N videos, then
on `--factor`·N. Per stage and size it prints: wall seconds, seconds per video, peak RSS of the driver
(this process) and of the largest Dask worker, files and bytes written, Prefect task runs; then
the ratios between the sizes, the extraction's worker-seconds per video (its fixed cost: the clips
are tiny and DIS costs under a millisecond a pair) and the rerun of a complete store at the larger size.

Quality bar (issue 14): s/video of every stage grows ≤ 1.15×; the driver's peak RSS ≤ 1.25× and no
worker's more; extraction ≤ 0.1 worker-seconds a tiny video; the rerun ≤ 5 % of the first run.

Run: python benchmarks/scale.py [--videos 1000] [--factor 4] [--workers 2] [--keep DIR]
     python benchmarks/scale.py --sizes 4000,13320            # and UCF-101's count
Each stage runs as the CLI runs it: ingest and extract on a fresh local Dask cluster, train,
evaluate, recognize and potential in the driver; each size in a fresh process with its own Prefect API
(started before timing); between stages the driver hands freed memory back to the OS, as `im2flow pipeline`
does. Peak RSS: the driver sampled every 50 ms, each worker's VmHWM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")  # the stage lines, not every task's

import cv2
import httpx
import psutil

from im2flow_core.synthetic_actions import ACTIONS, make_scene_style, render_clip

N_CLASSES, CLIPS_PER_GROUP = 101, 2
CHEAP = {"extract": {"algorithm": "dis", "short_side": 32},
         "train": {"epochs": 1, "generator": {"depth": 5, "ngf": 8, "input_size": 32}, "load_size": 36,
                   "phi": {"epochs": 1, "base_width": 8}, "batch_size": 32, "potential_head_frames": 512},
         "evaluate": {"frames_per_video": 1, "baseline_frames_per_video": 1},
         "recognize": {"seeds": [0], "frames_per_video": 2, "eval_frames_per_video": 1, "appearance": {"epochs": 1,
                                                                                                       "base_width": 8},
                       "motion": {"epochs": 1, "base_width": 8}}}


def write_ucf_shaped_dataset(root: Path, n_videos: int, size: int, n_frames: int) -> Path:
    """`root/<Class>/v_<Class>_gGG_cCC.avi` for `n_videos` clips over 101 classes, with UCF-101 split files.

    Clips of a class come in pairs (a group: one scene); about a quarter of the groups after the
    first are test groups, spread over the classes, so every class has training clips.
    """
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    classes = [f"Action{i:03d}" for i in range(N_CLASSES)]
    train, test = [], []
    for index in range(n_videos):
        c, k = index % N_CLASSES, index // N_CLASSES
        group, clip = k // CLIPS_PER_GROUP + 1, k % CLIPS_PER_GROUP + 1
        name = classes[c]
        rel = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
        frames = render_clip(ACTIONS[c % len(ACTIONS)], index, make_scene_style(1009 * c + group, size), n_frames)
        (root / name).mkdir(exist_ok=True)
        writer = cv2.VideoWriter(str(root / rel), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (size, size))
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        (test if group > 1 and (group + c) % 4 == 0 else train).append((rel, c + 1))
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(classes)))
    (lists / "trainlist01.txt").write_text("".join(f"{rel} {label}\n" for rel, label in train))
    (lists / "testlist01.txt").write_text("".join(f"{rel}\n" for rel, _ in test))
    return root


class PeakRSS:
    """Samples this process's resident memory every 50 ms while it runs; `.peak_mb` after."""

    def __init__(self) -> None:
        self.start_mb = psutil.Process().memory_info().rss / 2**20  # what earlier stages left allocated
        self.peak_mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, process.memory_info().rss / 2**20)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under `root`."""
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(folder, name))
    return files, size


def task_run_count(api_url: str) -> int:
    """Task runs the Prefect API has recorded so far."""
    return int(httpx.post(f"{api_url}/task_runs/count", json={}, timeout=60).json())


def _worker_peak_mb() -> float:
    """This process's peak resident memory (VmHWM): unlike ru_maxrss, not inherited from the parent at spawn."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_stage(name: str, work: Path, api_url: str, body: Callable[[str | None], Any], dask_workers: int | None,
              n_videos: int) -> dict[str, Any]:
    """Run `body(scheduler address or None)` and measure it (see the module docstring)."""
    from distributed import Client

    from im2flow_services.dask_cluster import dask_scheduler

    files0, bytes0 = tree_size(work)
    tasks0 = task_run_count(api_url)
    worker_mb = float("nan")
    os.sync()
    with PeakRSS() as driver:
        started = time.perf_counter()
        if dask_workers:
            with dask_scheduler(dask_workers, None) as address:
                body(address)
                seconds = time.perf_counter() - started
                with Client(address) as client:
                    worker_mb = max(client.run(_worker_peak_mb).values())
        else:
            body(None)
            seconds = time.perf_counter() - started
    files1, bytes1 = tree_size(work)
    return {"stage": name, "videos": n_videos, "seconds": seconds, "s_per_video": seconds / n_videos,
            "driver_mb": driver.peak_mb, "driver_added_mb": driver.peak_mb - driver.start_mb, "worker_mb": worker_mb,
            "files": files1 - files0,
            "mb_written": (bytes1 - bytes0) / 1e6, "task_runs": task_run_count(api_url) - tasks0,
            "worker_s_per_video": seconds * (dask_workers or 1) / n_videos}


def run_size(n_videos: int, root: Path, workers: int, api_url: str, size: int, n_frames: int) -> list[dict[str, Any]]:
    """Every stage on a fresh dataset of `n_videos`; one row per stage, plus the rerun of extraction."""
    from im2flow_flows.evaluate import evaluate_flow
    from im2flow_flows.extract import extract_flow
    from im2flow_flows.ingest import ingest_flow
    from im2flow_flows.potential import potential_flow
    from im2flow_flows.recognize import recognize_flow
    from im2flow_flows.train import train_flow
    from im2flow_services.dask_cluster import task_runner
    from im2flow_tasks.config import EvalConfig, ExtractConfig, IngestConfig, RecognizeConfig, TrainConfig
    from im2flow_tasks.process_memory import release_freed_memory

    dataset, work = root / f"data-{n_videos}", root / f"work-{n_videos}"
    t = time.perf_counter()
    write_ucf_shaped_dataset(dataset, n_videos, size, n_frames)
    print(f"  {n_videos} videos written in {time.perf_counter() - t:.0f} s", flush=True)
    work.mkdir()
    tracking = {"mlflow_tracking_uri": f"sqlite:///{work / 'mlflow.db'}"}
    extract_cfg = ExtractConfig(**CHEAP["extract"])
    eval_cfg = EvalConfig(**CHEAP["evaluate"], **tracking)
    stages: list[tuple[str, Callable[[str | None], Any], int | None]] = [
        ("ingest", lambda a: ingest_flow.with_options(task_runner=task_runner(a))(str(dataset), str(work),
                                                                                 IngestConfig()), workers),
        ("extract", lambda a: extract_flow.with_options(task_runner=task_runner(a))(str(work), extract_cfg), workers),
        ("extract (rerun)", lambda a: extract_flow.with_options(task_runner=task_runner(a))(str(work), extract_cfg),
         workers),
        ("train", lambda a: train_flow(str(work), TrainConfig(**CHEAP["train"], **tracking)), None),
        ("evaluate", lambda a: evaluate_flow(str(work), eval_cfg), None),
        ("recognize", lambda a: recognize_flow(str(work), RecognizeConfig(**CHEAP["recognize"], **tracking)), None),
        ("potential", lambda a: potential_flow(str(work), None, eval_cfg), None),
    ]
    rows = []
    for name, body, dask_workers in stages:
        row = run_stage(name, work, api_url, body, dask_workers, n_videos)
        print(f"  {name:16s} {row['seconds']:8.1f} s  {row['s_per_video'] * 1000:7.1f} ms/video  driver "
              f"{row['driver_mb']:6.0f} MB  tasks {row['task_runs']}", flush=True)
        rows.append(row)
        release_freed_memory()  # as `im2flow pipeline` does between its stages
    return rows


def print_table(results: dict[int, list[dict[str, Any]]]) -> None:
    """Both sizes per stage, then the growth ratios."""
    print("\n| stage | videos | wall s | ms/video | driver peak MB | driver peak above its start MB "
          "| largest worker MB | files | MB written | task runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, rows in results.items():
        for r in rows:
            print(f"| {r['stage']} | {n} | {r['seconds']:.1f} | {1000 * r['s_per_video']:.1f} | {r['driver_mb']:.0f} | "
                  f"{r['driver_added_mb']:.0f} | {r['worker_mb']:.0f} | {r['files']} | {r['mb_written']:.1f} | "
                  f"{r['task_runs']} |")
    sizes = sorted(results)
    if len(sizes) < 2:
        return
    small, large = results[sizes[0]], results[sizes[-1]]  # the smallest and the largest size
    print(f"\ngrowth from {sizes[0]} to {sizes[-1]} videos (targets: s/video ≤ 1.15×, peak RSS ≤ 1.25×)")
    print("| stage | s/video | driver peak RSS | driver peak above its start | largest worker RSS | task runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for a, b in zip(small, large):
        worker = b["worker_mb"] / a["worker_mb"] if a["worker_mb"] == a["worker_mb"] else float("nan")
        added = b["driver_added_mb"] / a["driver_added_mb"] if a["driver_added_mb"] > 1 else float("nan")
        print(f"| {a['stage']} | {b['s_per_video'] / a['s_per_video']:.2f}× | {b['driver_mb'] / a['driver_mb']:.2f}× | "
              f"{added:.2f}× | {worker:.2f}× | {b['task_runs'] / max(1, a['task_runs']):.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1000, help="the smaller size (default 1000)")
    parser.add_argument("--factor", type=int, default=4, help="the larger size is factor × videos (1: one size)")
    parser.add_argument("--sizes", help="comma-separated sizes instead of --videos and --factor, e.g. 4000,13320")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, help="frame side in px")
    parser.add_argument("--frames", type=int, default=8, help="frames a clip")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)  # internal: one size, rows to --rows
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one_size:
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=180):
            api_url = PREFECT_API_URL.value()
            os.environ["PREFECT_API_URL"] = api_url  # Dask workers report their task runs to the same API
            rows = run_size(args.one_size, args.keep, args.workers, api_url, args.size, args.frames)
        args.rows.write_text(json.dumps(rows))
        return

    sizes = [args.videos] if args.factor == 1 else [args.videos, args.videos * args.factor]
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    with contextlib.ExitStack() as stack:  # a temporary folder is removed on the way out, even on errors
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="im2flow-scale-")))
        root.mkdir(parents=True, exist_ok=True)
        results = {}
        for n in sizes:
            # Each size in a fresh process, so both start from the same memory and state.
            print(f"{n} videos:", flush=True)
            rows_file = root / f"rows-{n}.json"
            subprocess.run([sys.executable, __file__, "--one-size", str(n), "--rows", str(rows_file), "--keep",
                            str(root), "--workers", str(args.workers), "--size", str(args.size), "--frames",
                            str(args.frames)], check=True)
            results[n] = json.loads(rows_file.read_text())
        print_table(results)
        for n, rows in results.items():
            by = {r["stage"]: r for r in rows}
            print(f"\n{n} videos: extraction {by['extract']['worker_s_per_video']:.3f} worker-s a video "
                  f"(target ≤ 0.1); rerun of the complete store {by['extract (rerun)']['seconds']:.1f} s = "
                  f"{100 * by['extract (rerun)']['seconds'] / by['extract']['seconds']:.1f} % of the first run "
                  f"(target ≤ 5 %)")


if __name__ == "__main__":
    main()
