"""Labelled still images: the CSV contract and the torch dataset over it."""

import numpy as np
import pytest

from im2flow_core.paired_transforms import center_image
from im2flow_storage.images import read_labelled_images, write_rgb_image
from im2flow_storage.torch_datasets import LabelledImageDataset


def test_csv_rows_resolve_relative_paths_and_reject_bad_rows(tmp_path):
    (tmp_path / "a.csv").write_text("path,label,split\nx/1.png,run,train\n/abs/2.png,walk,\n")
    rows = read_labelled_images(tmp_path / "a.csv")
    assert [(r.path, r.label, r.split) for r in rows] == [(str(tmp_path / "x/1.png"), "run", "train"),
                                                         ("/abs/2.png", "walk", "")]
    (tmp_path / "b.csv").write_text("file,label\n1.png,run\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['path'\]"):
        read_labelled_images(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("path,label\n1.png,\n")
    with pytest.raises(ValueError, match="c.csv:2: empty path or label"):
        read_labelled_images(tmp_path / "c.csv")
    (tmp_path / "d.csv").write_text("path,label,split\n1.png,run,val\n")
    with pytest.raises(ValueError, match="split must be train or test"):
        read_labelled_images(tmp_path / "d.csv")
    with pytest.raises(ValueError, match="cannot read labels file"):
        read_labelled_images(tmp_path / "missing.csv")


def test_image_dataset_yields_normalised_crops_and_names_unreadable_files(tmp_path):
    image = np.zeros((30, 50, 3), np.uint8)
    image[:, :25] = 255
    write_rgb_image(tmp_path / "half.png", image)
    (tmp_path / "bad.png").write_bytes(b"junk")
    dataset = LabelledImageDataset([str(tmp_path / "half.png"), str(tmp_path / "bad.png")], [1, 0],
                                   lambda rgb, rng: center_image(rgb, 16))
    item = dataset[0]
    assert item["rgb"].shape == (3, 16, 16) and int(item["label"]) == 1
    assert item["rgb"].min() == -1 and item["rgb"].max() == 1  # [0, 255] → [-1, 1]
    assert float(item["rgb"][:, :, 0].mean()) == 1.0 and float(item["rgb"][:, :, -1].mean()) == -1.0
    with pytest.raises(ValueError, match="bad.png"):
        dataset[1]


def test_foreground_masks_are_read_only_inside_their_folder(tmp_path):
    import cv2
    import numpy as np

    from im2flow_storage.images import read_foreground_mask

    (tmp_path / "masks" / "Run" / "v1").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:4] = 255
    cv2.imwrite(str(tmp_path / "masks" / "Run" / "v1" / "000000.png"), mask)
    cv2.imwrite(str(tmp_path / "outside" / "000000.png"), mask)
    assert read_foreground_mask(tmp_path / "masks", "Run/v1", 0, (4, 6)).sum() == 4
    assert read_foreground_mask(tmp_path / "masks", "../outside", 0, (4, 6)) is None  # an id is data
