"""The README's first command as a newcomer meets it: fresh clone, fresh venv, empty home; seconds per stage.

Clones this checkout's HEAD into a temporary folder, then runs the README's demo command there in
two timed steps (the install: `python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e .`;
the demo: `.venv/bin/im2flow demo`) with `HOME` an empty folder and no `PREFECT_*`/`MLFLOW_*`
variables, beside `--burners` CPU-bound processes (default 1: a busy machine). Prints
- the install's seconds, the demo's seconds and their sum (target: ≤ 600 s on 2 cores);
- each pipeline stage's seconds (from the demo's MLflow parent run, `seconds_<stage>`) and the rest
  (start-up, preparing Prefect's database on a fresh home, generating the dataset, predicting);
- a machine-speed reference measured in the same run, beside the same burners: samples/s of a fixed
  torch step (the demo's G, 64 px, depth 6, ngf 32, batch 16, L2 loss, Adam; this process's torch),
  so a figure from a slower machine or a busier day can be read against it.

Run: python benchmarks/demo_time.py [--burners 1] [--keep DIR] [--python python3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_STEPS = 12


def burn() -> None:
    """A CPU-bound loop (the other job on a busy machine)."""
    while True:
        pass


def reference_samples_per_s() -> float:
    """Samples/s of a fixed G training step (64 px, depth 6, ngf 32, batch 16, L2, Adam), best of 3 rounds."""
    from im2flow_core.unet import GeneratorConfig, UNetGenerator

    torch.manual_seed(0)
    model = UNetGenerator(GeneratorConfig(depth=6, ngf=32, input_size=64, n_dropout=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    x, y = torch.randn(16, 3, 64, 64), torch.randn(16, 3, 64, 64)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(REFERENCE_STEPS // 3):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        best = max(best, 16 * (REFERENCE_STEPS // 3) / (time.perf_counter() - started))
    return best


def clean_env(home: Path) -> dict[str, str]:
    """This environment without Prefect, MLflow, torch-thread or virtualenv settings, `HOME` = `home`."""
    drop = ("PREFECT_", "MLFLOW_", "IM2FLOW_", "OMP_", "VIRTUAL_ENV", "TORCHINDUCTOR_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["HOME"] = str(home)
    env["COLUMNS"] = "120"
    return env


def timed(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Seconds `args` take to run in `cwd` with `env`, output appended to `log`; exits naming it if it fails."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(args)} exited {code} after {seconds:.0f} s; the log's end:\n{tail}")
    return seconds


def stage_seconds(work_dir: Path, python: Path, env: dict[str, str]) -> dict[str, float]:
    """`seconds_<stage>` of the newest pipeline run in `work_dir`/mlflow.db (read by the clone's own mlflow)."""
    script = ("import json\nfrom mlflow.tracking import MlflowClient\n"
              f"c = MlflowClient('sqlite:///{work_dir / 'mlflow.db'}')\n"
              "e = c.get_experiment_by_name('im2flow-pipeline')\n"
              "r = c.search_runs([e.experiment_id], order_by=['start_time DESC'], max_results=20)\n"
              "r = next(x for x in r if any(k.startswith('seconds_') for k in x.data.metrics))\n"
              "print(json.dumps({k.removeprefix('seconds_'): v for k, v in r.data.metrics.items()"
              " if k.startswith('seconds_')}))\n")
    out = subprocess.run([str(python), "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burners", type=int, default=1, help="CPU-bound processes beside the demo")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--python", default="python3", help="interpreter the venv is made with")
    args = parser.parse_args()

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        measure(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="im2flow-demo-time-") as tmp:
        measure(args, Path(tmp))


def measure(args: argparse.Namespace, root: Path) -> None:
    """Clone, install and run the demo under `root`; print the table."""
    home, clone, log = root / "home", root / "clone", root / "demo-time.log"
    home.mkdir(exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = clean_env(home)
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
    for b in burners:
        b.start()
    try:
        reference_before = reference_samples_per_s()
        install = timed(["bash", "-c", f"{args.python} -m venv .venv && .venv/bin/pip install -c constraints.txt -e ."],
                        clone, env, log)
        demo = timed([str(clone / ".venv" / "bin" / "im2flow"), "demo"], clone, env, log)
        reference_after = reference_samples_per_s()
    finally:
        for b in burners:
            b.terminate()
    stages = stage_seconds(clone / "im2flow-demo", clone / ".venv" / "bin" / "python", env)
    rest = demo - sum(stages.values())
    print(f"machine: {os.cpu_count()} cores, {args.burners} CPU-bound process(es) beside; "
          f"python {sys.version.split()[0]}")
    print(f"reference (fixed torch G step, 64 px, batch 16): {reference_before:.0f} samples/s before the demo, "
          f"{reference_after:.0f} after")
    print(f"{'step':<34}{'seconds':>9}")
    print(f"{'install (venv + pip install)':<34}{install:>9.1f}")
    for name, seconds in stages.items():
        print(f"{'  demo stage ' + name:<34}{seconds:>9.1f}")
    print(f"{'  demo rest':<34}{rest:>9.1f}   (start-up, Prefect's database, dataset, predictions)")
    print(f"{'demo':<34}{demo:>9.1f}")
    print(f"{'total (the README command)':<34}{install + demo:>9.1f}   target ≤ 600")
    print(f"log: {log}" if args.keep else "")


if __name__ == "__main__":
    main()
