"""Planning `extract` on an S3 API server: which of N complete videos are done, by listing vs by reading each.

Starts moto's S3 server on loopback (the test extras: `moto[server]`, `s3fs`), writes a flow store of
`--videos` complete videos (metadata only, `im2flow_tasks.benchmark_stores.write_planning_store`), then times
1. `FlowStore.complete_videos` (the completion index: two listings), with the requests it made;
2. reading every video's attributes concurrently (`FlowStore.records`);
3. the earlier way, one `is_complete` metadata read after another, on `--sample` videos (extrapolated).
Target (issue 14): planning a store of 2,000 complete videos ≤ 10 s.

Run: python benchmarks/plan_s3.py [--videos 2000] [--sample 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_logged(log: Path) -> int:
    """Requests moto's server has logged so far."""
    return log.read_text().count(" HTTP/1.1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=200, help="videos timed the earlier way (one read each)")
    args = parser.parse_args()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if moto is None:
        sys.exit("moto_server not found: install the test extras (pip install -e '.[test]')")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="im2flow-plan-s3-") as folder:
        log = Path(folder) / "moto.log"
        with open(log, "wb") as out:
            server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint})
            for _ in range(120):
                try:
                    if httpx.get(f"{endpoint}/moto-api/", timeout=2).status_code < 300:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            httpx.put(f"{endpoint}/plan-bench", timeout=30).raise_for_status()  # create the bucket

            from im2flow_storage import open_flow_store
            from im2flow_tasks.benchmark_stores import write_planning_store

            started = time.perf_counter()
            url, sources = write_planning_store("s3://plan-bench/w", args.videos)
            print(f"{args.videos} complete videos written to the S3 server in {time.perf_counter() - started:.1f} s")
            store = open_flow_store(url)
            before, started = requests_logged(log), time.perf_counter()
            done = store.complete_videos(sources)
            plan_s = time.perf_counter() - started
            time.sleep(0.5)  # the server logs a request after answering it
            print(f"complete_videos (index listings): {plan_s:6.2f} s, {requests_logged(log) - before} requests, "
                  f"{len(done)} complete (target ≤ 10 s)")
            started = time.perf_counter()
            records = store.records()
            print(f"records (one concurrent batch):   {time.perf_counter() - started:6.2f} s for {len(records)} videos")
            sample = list(sources)[: args.sample]
            started = time.perf_counter()
            assert all(store.is_complete(v, *sources[v]) for v in sample)
            serial = (time.perf_counter() - started) / len(sample)
            print(f"earlier: one is_complete per video: {serial * 1000:.1f} ms a video, so "
                  f"{serial * args.videos:.1f} s for {args.videos} (and {serial * 13320:.0f} s for UCF-101's 13,320)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
