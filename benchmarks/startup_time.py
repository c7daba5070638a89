"""A command's fixed start-up: typing `im2flow ingest` on 8 small clips to its exit, and where the seconds go.

Writes 8 short clips (2 classes, MPEG-4 and Motion-JPEG, 96 px, 6 frames), then, `--repeats` times
each in fresh processes (as a user's command is):
1. `im2flow ingest CLIPS --work-dir W` end to end (a new W each time), wall seconds;
2. its parts, measured in one fresh process in the order the command pays them: Python itself,
   the imports of the command (`flows.cli`, `flows.ingest`), the temporary Prefect API (start-up until
   it answers), the local Dask cluster (start and close, one worker per core);
and prints the median of each, and the work as the end-to-end time less those parts (the scan,
probing 8 clips, writing the manifest, Prefect's run records). Target: ≤ 10 s on a warm machine
(issue 23). Uses this process's environment (its Prefect home: run it twice for "warm").

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

PARTS = """
import json, time
t0 = time.perf_counter()
import flows.cli, flows.ingest  # what `im2flow ingest` imports before it works
t1 = time.perf_counter()
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
server.start()  # returns once the temporary API answers
t2 = time.perf_counter()
from flows.compute import dask_scheduler
with dask_scheduler():
    pass
t3 = time.perf_counter()
server.stop()
print(json.dumps({"imports": t1 - t0, "temporary API": t2 - t1, "Dask cluster": t3 - t2}))
"""


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
        totals, parts, python = [], [], []
        for k in range(args.repeats):
            totals.append(seconds_of([str(BIN / "im2flow"), "ingest", str(clips), "--work-dir", str(root / f"w{k}")],
                                     root))
            python.append(seconds_of([sys.executable, "-c", "pass"], root))
            result = subprocess.run([sys.executable, "-c", PARTS], cwd=root, capture_output=True, text=True,
                                    check=True)
            parts.append(json.loads(result.stdout.strip().splitlines()[-1]))
    median = {"Python": statistics.median(python)}
    median.update({name: statistics.median(p[name] for p in parts) for name in parts[0]})
    total = statistics.median(totals)
    print(f"`im2flow ingest` on 8 clips, median of {args.repeats} runs (each in a fresh process)")
    print(f"{'part':<22}{'seconds':>9}")
    for name, seconds in median.items():
        print(f"{name:<22}{seconds:>9.2f}")
    print(f"{'work (the rest)':<22}{total - sum(median.values()):>9.2f}")
    print(f"{'end to end':<22}{total:>9.2f}   target ≤ 10 (warm); runs: {', '.join(f'{t:.1f}' for t in totals)}")


if __name__ == "__main__":
    main()
