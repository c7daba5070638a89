"""A command's fixed start-up: typing `im2flow ingest` on 8 small clips to its exit, and where the seconds go.

Writes 8 short clips (2 classes, MPEG-4 and Motion-JPEG, 96 px, 6 frames), then, `--repeats` times
each in fresh processes (as a user's command is):
1. `im2flow ingest CLIPS --work-dir W` end to end (a new W each time), wall seconds;
2. the same command's timeline, in one fresh process that runs the console script's `main` with
   marks around its steps: Python, the CLI and Prefect's settings (the temporary Prefect API is
   spawned first and boots while the rest goes on: im2flow_services.prefect_api), the command's imports, the
   local Dask cluster's start (its workers import Prefect's task engine before they join:
   im2flow_services.worker_preload), waiting for the API (the command imports what its first flow run needs
   meanwhile), the flow (scan, probing 8 clips on the workers, the manifest, Prefect's run records), and the
   cluster's close and the exit;
and prints the median of each step, and the API's boot (start to answering), which runs beside
the others. Target: ≤ 10 s end to end on a warm machine (issue 23). Uses this process's environment
(its Prefect home: run it twice for "warm").

Run: python benchmarks/startup_time.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from im2flow_core.synthetic_actions import make_scene_style, render_clip

BIN = Path(sys.executable).parent

TIMELINE = """
import atexit, json, sys, time
from contextlib import contextmanager
started = time.perf_counter()
marks = {}
if __name__ == "__main__":
    # imports no Prefect (im2flow_services.dask_cluster would: it is patched later)
    import im2flow_services.prefect_api as api
    boot, start_early, wait = api.boot_before_settings, api.start_early, api.wait_until_ready
    def booting():
        boot(); marks["API spawned"] = time.perf_counter()
    def early():
        out = start_early(); marks["API started"] = time.perf_counter()
        import im2flow_services.dask_cluster as compute
        global scheduler
        scheduler, compute.dask_scheduler = compute.dask_scheduler, cluster
        return out
    def waited(*a, **k):
        marks["waiting for the API"] = time.perf_counter(); wait(*a, **k); marks["API answers"] = time.perf_counter()
    @contextmanager
    def cluster(*a, **k):
        marks["CLI imported"] = time.perf_counter()
        with scheduler(*a, **k) as address:
            marks["cluster up"] = time.perf_counter()
            yield address
            marks["flow done"] = time.perf_counter()
    api.boot_before_settings, api.start_early, api.wait_until_ready = booting, early, waited
    atexit.register(lambda: print(json.dumps({k: v - started for k, v in marks.items()}
                                             | {"exit": time.perf_counter() - started})))
    sys.argv = ["im2flow", *sys.argv[1:]]
    from im2flow_cli.console_script import main
    main()
"""

STEPS = (("the command's imports", "API started", "CLI imported"), ("Dask cluster start", "CLI imported", "cluster up"),
         ("waiting for the API", "waiting for the API", "API answers"), ("the flow", "API answers", "flow done"),
         ("cluster close, exit", "flow done", "exit"))


def write_clips(root: Path) -> Path:
    """8 clips in 2 class folders under `root`/clips; returns that folder."""
    clips = root / "clips"
    for i in range(8):
        action = ("swim_left", "spin_cw")[i % 2]
        folder = clips / action
        folder.mkdir(parents=True, exist_ok=True)
        ext, fourcc = ("mp4", "mp4v") if i % 4 < 2 else ("avi", "MJPG")
        writer = cv2.VideoWriter(str(folder / f"clip{i}.{ext}"), cv2.VideoWriter_fourcc(*fourcc), 12.0, (96, 96))
        for frame in render_clip(action, i, make_scene_style(i, 96), 6):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    return clips


def seconds_of(args: list[str], cwd: Path) -> float:
    """Wall seconds of `args`; fails naming the command if it exits non-zero."""
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="im2flow-startup-") as tmp:
        root = Path(tmp)
        clips = write_clips(root)
        totals, timelines, python = [], [], []
        for k in range(args.repeats):
            totals.append(seconds_of([str(BIN / "im2flow"), "ingest", str(clips), "--work-dir", str(root / f"w{k}")],
                                     root))
            python.append(seconds_of([sys.executable, "-c", "pass"], root))
            result = subprocess.run([sys.executable, "-c", TIMELINE, "ingest", str(clips), "--work-dir",
                                     str(root / f"t{k}")], cwd=root, capture_output=True, text=True, check=True)
            timelines.append(json.loads(result.stdout.strip().splitlines()[-1]))
    median = {"Python, CLI, Prefect settings": statistics.median(t["API started"] for t in timelines)}
    median.update({name: statistics.median(t[end] - t[start] for t in timelines) for name, start, end in STEPS})
    boot = statistics.median(t["API answers"] - t["API spawned"] for t in timelines)
    total = statistics.median(totals)
    print(f"`im2flow ingest` on 8 clips, median of {args.repeats} runs (each in a fresh process)")
    print(f"{'step':<40}{'seconds':>9}")
    for name, seconds in median.items():
        print(f"{name:<40}{seconds:>9.2f}")
    print(f"{'(the API boots':<40}{boot:>9.2f}   from its start to answering, beside the imports and the cluster)")
    print(f"{'(a bare Python interpreter':<40}{statistics.median(python):>9.2f}   included in the first step)")
    print(f"{'end to end':<40}{total:>9.2f}   target ≤ 10 (warm); runs: {', '.join(f'{t:.1f}' for t in totals)}")


if __name__ == "__main__":
    main()
