"""`im2flow predict` on a folder: batches of G, every flow at its own image's size, unreadable files named."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch

from im2flow_core.inference import motion_potential, predict_flow_images
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_tasks.potential import image_files
from im2flow_tasks.predict import OutputConflictError, output_stems, predict_images
from tests.conftest import png_claiming, real_texture


def test_a_folder_larger_than_a_batch_with_odd_sizes_and_a_broken_file(tmp_path):
    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = [(37, 45), (29, 61), (37, 45), (50, 33), (64, 64)]
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"im{i}.png"), real_texture(h, w, i % 2))
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8 nope")
    rows = predict_images(image_files([str(folder)]), generator, tmp_path / "out", device="cpu", batch_size=2)
    assert [r["error"] for r in rows] == [""] * 5 + ["cannot read as an image"]
    for i, (h, w) in enumerate(sizes):
        image = np.load(tmp_path / "out" / f"im{i}_flowimage.npy")
        assert image.shape == (h, w, 3) and np.load(tmp_path / "out" / f"im{i}_flow.npy").shape == (h, w, 2)
        rgb = cv2.cvtColor(cv2.imread(str(folder / f"im{i}.png")), cv2.COLOR_BGR2RGB)
        alone = predict_flow_images(generator, [rgb], 32)[0]
        np.testing.assert_allclose(image, alone, atol=1e-5)  # batching does not change a prediction
        assert rows[i]["motion_potential_px"] == round(motion_potential(alone), 4)  # no head: the mean magnitude


def test_a_list_file_names_images_relative_to_itself(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "y.png"):
        cv2.imwrite(str(tmp_path / name), real_texture(20, 24, 0))
    absolute = tmp_path / "abs.png"
    cv2.imwrite(str(absolute), real_texture(20, 24, 1))
    listing = tmp_path / "images.txt"
    listing.write_text(f"# stills\na/x.png\n\n  y.png\n{absolute}\nmissing.png\n")
    assert image_files([str(listing), str(tmp_path / "a")]) == [
        str(tmp_path / "a/x.png"), str(tmp_path / "y.png"), str(absolute), str(tmp_path / "missing.png"),
        str(tmp_path / "a/x.png")]


def test_same_named_frames_of_different_videos_do_not_overwrite_each_other(tmp_path):
    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    frames = tmp_path / "frames"
    for i, name in enumerate(["Run/v1/img_00001.jpg", "Run/v2/img_00001.jpg", "Jump/v3/img_00001.jpg",
                              "Jump/v3/img_00001.png"]):
        (frames / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(frames / name), real_texture(24 + 4 * i, 32, i % 2))
    (frames / "Jump/v3/notes.txt").write_text("not an image")  # not picked up from a folder
    (frames / "Run/v9").mkdir()
    (frames / "Run/v9/img_00001.jpg").write_bytes(b"broken")
    rows = predict_images(image_files([str(frames)]), generator, tmp_path / "out", device="cpu", batch_size=3)
    assert [r["output"] for r in rows] == ["Jump/v3/img_00001_jpg", "Jump/v3/img_00001_png", "Run/v1/img_00001",
                                           "Run/v2/img_00001", ""]
    for row in rows[:4]:  # each output is its own image's, at its size
        assert np.load(tmp_path / "out" / f"{row['output']}_flow.npy").shape == (row["height"], row["width"], 2)
    assert len({r["height"] for r in rows[:4]}) == 4
    with open(tmp_path / "out" / "predictions.csv") as handle:
        report = list(csv.DictReader(handle))
    assert [r["image"] for r in report] == [r["image"] for r in rows]
    assert report[-1]["error"] == "cannot read as an image" and report[-1]["image"].endswith("Run/v9/img_00001.jpg")


def test_output_stems_of_one_folder_stay_flat():
    assert output_stems(["/a/b/x.png", "/a/b/y.jpg"]) == ["x", "y"]
    assert output_stems(["/a/b/x.png"]) == ["x"]
    assert output_stems(["/a/b/x.png", "/a/b/x.png"]) == ["x", "x"]  # the same file twice: one output
    assert output_stems([]) == []


def test_outputs_never_replace_an_input_or_a_file_predict_did_not_write(tmp_path):
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), real_texture(20, 24, 0))
    cv2.imwrite(str(folder / "a_flow.png"), real_texture(20, 24, 1))  # an input named like a's output
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(OutputConflictError, match="an input image"):
        predict_images(image_files([str(folder)]), generator, folder, device="cpu")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written, nothing replaced
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_flowimage.npy").write_bytes(b"someone's file")
    with pytest.raises(OutputConflictError, match="not written by im2flow predict"):
        predict_images([str(folder / "a.png")], generator, out, device="cpu")
    assert (out / "a_flowimage.npy").read_bytes() == b"someone's file"
    (out / "a_flowimage.npy").unlink()
    for _ in range(2):  # its own outputs: a rerun replaces them
        rows = predict_images([str(folder / "a.png")], generator, out, device="cpu")
        assert rows[0]["error"] == "" and np.load(out / "a_flowimage.npy").shape == (20, 24, 3)


def test_an_image_claiming_too_many_pixels_is_skipped_before_decoding_and_the_rest_complete(tmp_path, monkeypatch):
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    folder = tmp_path / "in"
    folder.mkdir()
    bomb = png_claiming(folder / "bomb.png", 10_000, 6_000)  # 60 MP (180 MB decoded) in ~60 kB
    assert bomb.stat().st_size < 200_000
    cv2.imwrite(str(folder / "ok.png"), real_texture(20, 24, 0))
    rows = predict_images(image_files([str(folder)]), generator, tmp_path / "out", device="cpu")
    assert rows[0]["image"].endswith("bomb.png") and "10000×6000 = 60,000,000 pixels" in rows[0]["error"]
    assert rows[1]["error"] == "" and (tmp_path / "out" / "ok_flow.png").is_file()
    monkeypatch.setenv("IM2FLOW_MAX_IMAGE_PIXELS", "100")  # settable: now the small image is over it too
    rows = predict_images([str(folder / "ok.png")], generator, tmp_path / "out2", device="cpu")
    assert "over the limit of 100" in rows[0]["error"]
