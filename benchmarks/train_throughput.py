"""Training throughput: data from the Zarr flow store vs from in-memory tensors, in one run.

Prints samples/s of the same Im2Flow training step (G + frozen φ content loss, Adam) fed by
1. `FlowPairDataset` over a real flow store (decode JPEG + flow codec, augmentation) through a
   DataLoader with 0 and 1 worker processes, and
2. batches already in memory (no I/O, no decoding),
and their ratio (target ≥ 0.8). Then forward+backward samples/s of the paper's generator
(256×256, depth 8, ngf 64) on the CPU, and on CUDA with bfloat16 autocast when a GPU is present.

Run: python benchmarks/train_throughput.py [--steps 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier
from im2flow_core.losses import Im2FlowLoss, LossConfig
from im2flow_core.paired_transforms import augment_pair
from im2flow_core.synthetic_actions import ACTIONS
from im2flow_core.training import GeneratorTrainable, autocast
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage import open_flow_store
from im2flow_storage.torch_datasets import FlowPairDataset, sample_index
from im2flow_tasks.benchmark_stores import write_synthetic_store


def build_store(work: Path) -> str:
    """A demo-like store: 8 actions × 4 groups × 20 frames at 64 px, DIS flow."""
    return write_synthetic_store(work, actions=ACTIONS, groups=4, size=64, n_frames=20)


def train_steps(trainable: GeneratorTrainable, batches, steps: int) -> float:
    """Samples/s over `steps` training steps (after 2 warm-up steps)."""
    iterator = iter(batches)
    for _ in range(2):
        trainable.train_step(next(iterator))
    started, samples = time.perf_counter(), 0
    for _ in range(steps):
        batch = next(iterator)
        trainable.train_step(batch)
        samples += batch["rgb"].shape[0]
    return samples / (time.perf_counter() - started)


def checksum_share(url: str, samples, n: int = 400) -> float:
    """Share of the time of reading + decoding RGB and flow frames that verifying their CRC32C takes."""
    import google_crc32c
    import zarr

    from im2flow_storage.flow_store import video_key
    from im2flow_storage.frame_reader import FrameReader

    group = zarr.open_group(url, mode="r")
    readers = {}
    for sample in samples[:n]:
        if sample.video_id not in readers:
            arrays = group[f"videos/{video_key(sample.video_id)}"]
            readers[sample.video_id] = (FrameReader(arrays["rgb"]), FrameReader(arrays["flow"]))
    blobs = [reader._blob(s.t) for s in samples[:n] for reader in readers[s.video_id]]
    started = time.perf_counter()
    for sample in samples[:n]:  # what training reads: verified, decoded frames
        rgb, flow = readers[sample.video_id]
        rgb.read(sample.t)
        flow.read_flow(sample.t)
    reading = time.perf_counter() - started
    started = time.perf_counter()
    for blob in blobs:  # the checksums alone, over the same payloads
        google_crc32c.value(blob)
    return (time.perf_counter() - started) / reading


def endless(loader):
    """Cycle a DataLoader forever (a new epoch each pass)."""
    while True:
        yield from loader


def fwd_bwd(device: torch.device, batch: int, steps: int) -> float:
    """Forward+backward samples/s of the paper's G at 256×256 on `device`."""
    g = UNetGenerator(GeneratorConfig()).to(device)
    opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    x = torch.randn(batch, 3, 256, 256, device=device)
    y = torch.rand(batch, 3, 256, 256, device=device)
    def step() -> None:
        with autocast(device):
            loss = (g(x).float() - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="im2flow-train-bench-") as temporary:  # removed afterwards, even on errors
        work = Path(temporary)
        url = build_store(work)
        store = open_flow_store(url)
        ids = store.video_ids
        labels = sorted({store.record(v).label for v in ids})
        label_of = {v: labels.index(store.record(v).label) for v in ids}
        samples = sample_index(store, ids, label_of)
        dataset = FlowPairDataset(url, samples, 2.0, partial(augment_pair, load_size=72, crop_size=64))
        print(f"{len(samples)} samples at 64 px; G depth 6 ngf 32; φ content loss on layer2; batch {args.batch_size}; "
              f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores\n")

        def trainable() -> GeneratorTrainable:
            torch.manual_seed(0)
            g = UNetGenerator(GeneratorConfig(depth=6, ngf=32, input_size=64))
            phi = FlowClassifier(ClassifierConfig(num_classes=len(labels), base_width=16, blocks=(1, 1, 1, 1),
                                                  stem="small"))
            return GeneratorTrainable(g, Im2FlowLoss(LossConfig(), phi), torch.optim.Adam(g.parameters(), 2e-4),
                                      torch.device("cpu"))

        needed = (args.steps + 2) * args.batch_size
        memory = [dataset[i % len(dataset)] for i in range(needed)]
        in_memory = [{k: torch.stack([m[k] for m in memory[i : i + args.batch_size]])
                      for k in memory[0]} for i in range(0, needed, args.batch_size)]
        mem_rate = train_steps(trainable(), in_memory, args.steps)
        print(f"in-memory tensors:              {mem_rate:7.1f} samples/s")
        for workers in (0, 1):
            loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                                persistent_workers=workers > 0)
            rate = train_steps(trainable(), endless(loader), args.steps)
            print(f"Zarr store, {workers} loader worker(s):  {rate:7.1f} samples/s   ratio {rate / mem_rate:.2f}"
                  "  (target ≥ 0.8)")
        started = time.perf_counter()
        for i in range(200):
            dataset[i % len(dataset)]
        print(f"\nreading + decoding + augmenting one sample: {(time.perf_counter() - started) / 200 * 1e3:.2f} ms")
        print(f"CRC32C verification of the frames read: {checksum_share(url, samples):.1%} of the read time "
              "(reads + checksums + decoding, side by side)")
        cpu_rate = fwd_bwd(torch.device("cpu"), 4, 3)
        print(f"\npaper G (256×256, depth 8, ngf 64), fwd+bwd, CPU, batch 4: {cpu_rate:.2f} samples/s")
        if torch.cuda.is_available():
            name = torch.cuda.get_device_name()
            gpu_rate = fwd_bwd(torch.device("cuda"), 32, 20)
            print(f"paper G fwd+bwd, {name}, bf16 autocast, batch 32: {gpu_rate:.1f} samples/s")
        else:
            print("no CUDA GPU here: GPU throughput not measured")


if __name__ == "__main__":
    main()
