"""Scoring many images for motion potential: batches, unreadable files, the gallery's rank order."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from im2flow_core.inference import motion_potential, predict_flow_images
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_tasks.potential import agreement_table, gallery_entries, image_files, score_images, still_images
from tests.conftest import real_texture


def test_stills_are_scored_in_batches_unreadable_ones_named_and_the_gallery_is_in_rank_order(tmp_path):
    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    folder = tmp_path / "stills"
    (folder / "sub").mkdir(parents=True)
    for i in range(7):  # odd sizes, nested folders, more images than one batch
        cv2.imwrite(str((folder / "sub" if i % 2 else folder) / f"im{i}.png"), real_texture(30 + 3 * i, 41 + i, i % 2))
    (folder / "broken.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    paths = image_files([str(folder)])
    assert len(paths) == 8 and not any(p.endswith(".txt") for p in paths)
    result = score_images(generator, still_images(paths), "cpu", batch_size=3, gallery_k=2)
    assert result["skipped"] == [str(folder / "broken.jpg")] and len(result["rows"]) == 7
    one_by_one = {p: motion_potential(predict_flow_images(generator, [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)],
                                                          32)[0]) for p in paths if not p.endswith("broken.jpg")}
    for row in result["rows"]:
        assert math.isclose(row["potential_px"], one_by_one[row["image"]], rel_tol=1e-4)
    ranked = sorted(result["rows"], key=lambda r: -r["potential_px"])
    rank_of = {r["image"]: i + 1 for i, r in enumerate(ranked)}
    shown = gallery_entries(result["extremes"], rank_of)
    assert [rank_of[e["image"]] for e in shown] == [1, 2, 6, 7]
    assert all(e["flow"].shape == e["rgb"].shape[:2] + (2,) for e in shown)


def test_agreement_table_leaves_out_methods_that_cannot_rank():
    truth = np.array([0.1, 0.5, 0.2, 0.9, 0.4])
    table = {r["method"]: r for r in agreement_table({"good": truth * 2, "flat": np.ones(5)}, truth, 200)}
    assert math.isclose(table["good"]["spearman"], 1.0) and math.isclose(table["good"]["kendall"], 1.0)
    assert math.isnan(table["flat"]["spearman"]) and math.isnan(table["flat"]["kendall_low"])
