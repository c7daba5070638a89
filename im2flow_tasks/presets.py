"""Named presets: stage settings that replace the paper's defaults for a purpose (the CPU demo).

A preset is the lowest layer above the defaults: a YAML file, the environment and flags still
override it (im2flow_tasks.config.load_config).
"""

from __future__ import annotations

from typing import Any

DEMO_EXTRACT: dict[str, Any] = {"short_side": 64}
"""The demo runs at 64 px (DESIGN.md, compute budget): real datasets keep the 256 px default.

Eight short clips per Prefect task: one 8-frame clip is ~0.2 s of work, less than Prefect's
per-task cost through Dask (~0.12 s, DESIGN.md task granularity).
"""

DEMO_TRAIN: dict[str, Any] = {
    "generator": {"depth": 6, "ngf": 16, "input_size": 64, "n_dropout": 0}, "load_size": 72, "epochs": 14,
    "batch_size": 16, "lr": 1e-3, "lr_decay_start": 7, "patience": 4, "potential_head_frames": 1024,
    "loss": {"magnitude_norm": "l1", "pixel_weight": 150.0},
    "phi": {"base_width": 16, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 3, "patience": 3, "hflip": False},
}
"""A small U-Net and φ for CPUs; the paper's configuration (depth 8, ngf 64, 256 px) is the default.

Sized for the demo's budget (the README's first command in ≤ 10 minutes on 2 cores, the install
included; `benchmarks/demo_time.py`): about 12k samples of G (13 epochs gave EPE-FG 0.86× the best baseline's
in one run, 14 gave 0.81–0.82×). Per second of a 2-core CPU, ngf 16
with Adam at lr 1e-3, batches of 16 and a linear decay over the second half learns more than ngf 32
at the pix2pix setting (lr 2e-4, β₁ 0.5, batches of 32): at equal wall time on the demo data,
EPE-FG 1.57 vs 1.66 and DS-FG 0.36 vs 0.17 (measured side by side).
No dropout in G: on the demo data dropout 0.5 in the inner decoder blocks lowered the direction
similarity on the foreground (DS-FG 0.28 with it, 0.36 without, at equal steps). An L1 penalty on
the magnitude channel: with the paper's L2, G predicts the mean magnitude where it is unsure
whether something moves (a halo around figures, faint motion on the 87 % of still pixels) and loses
all-pixel EPE to zero flow (0.292 vs 0.271 after 30 epochs); L1's median is 0 there (measured at
equal steps: EPE 0.241 vs zero flow's 0.267, DS unchanged). Pixel weight 150 = 3 × the released
code's 50: the demo was tuned when L_pixel summed the three channels' errors per pixel (3× the
per-element mean it is now), so its loss is unchanged.
No left-right flips for φ and the recognition streams: the demo's classes come in mirror-image
pairs (swim left/right, spin clockwise/anticlockwise), and a flipped frame of one is a frame of the
other with the wrong label (flips cost φ ten points of validation accuracy). G keeps them: a
flipped frame's true flow is the flipped flow.
"""

_DEMO_STREAM: dict[str, Any] = {"base_width": 16, "blocks": (1, 1, 1, 1), "stem": "imagenet", "epochs": 6,
                                "patience": 3, "hflip": False}
DEMO_RECOGNIZE: dict[str, Any] = {"seeds": (0, 1, 2), "frames_per_video": 3, "oracle": False,
                                  "appearance": {**_DEMO_STREAM, "epochs": 8, "patience": 8, "lr": 3e-3},
                                  "motion": _DEMO_STREAM}
"""Small recognition streams for CPUs (width 16), three seeds (the accuracy table reports mean ± std).

The appearance stream trains 8 epochs at lr 3e-3 without early stopping: at 6 epochs and lr 1e-3
it had not learnt the frames (validation accuracy 0.49 vs 0.79, measured side by side). No oracle
stream (true flow) in the demo: it costs 40 s of the demo's 10 minutes and is not part of the
paper's table; `--set recognize.oracle=true` adds it (it scored 0.97 on the demo data).
"""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "demo": {"extract": DEMO_EXTRACT, "train": DEMO_TRAIN, "recognize": DEMO_RECOGNIZE},
}
"""Preset name → section → fields. `paper` is the defaults themselves."""
