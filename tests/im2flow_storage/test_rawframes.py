"""The rawframes layout: folder names, all-or-nothing video folders, annotation lists, scanning, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im2flow_storage.datasets import DatasetLayout, assign_splits, split_files_layout
from im2flow_storage.paths import UnsafePathError
from im2flow_storage.rawframes import (
    RawframesError,
    RawframeVideoWriter,
    check_export_root,
    check_export_settings,
    finished_videos,
    frame_dir_of,
    local_root,
    read_annotation_lists,
    read_image,
    scan_folder,
    scan_rawframes,
    write_annotation_lists,
)


def test_frame_dirs_follow_class_and_video_names():
    assert frame_dir_of("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", "ApplyEyeMakeup") == \
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01"
    assert frame_dir_of("clips/day 1/run", "run fast") == "run_fast/clips__day_1__run"
    assert frame_dir_of("solo", "") == "unlabelled/solo"


def test_a_video_folder_appears_only_when_complete(tmp_path):
    rgb = np.full((12, 16, 3), 90, np.uint8)
    grey = np.full((12, 16), 128, np.uint8)
    with RawframeVideoWriter(tmp_path, "walk/v1") as writer:
        writer.write_rgb(1, rgb)
        writer.write_rgb(2, rgb)
        writer.write_flow(1, grey, grey)
        assert (tmp_path / "walk/v1.partial/img_00002.jpg").is_file() and not (tmp_path / "walk/v1").exists()
        assert finished_videos(tmp_path) == {}
        writer.commit({"video_id": "walk/v1", "n_frames": 2})
    assert sorted(p.name for p in (tmp_path / "walk/v1").iterdir()) == [
        "flow_x_00001.jpg", "flow_y_00001.jpg", "img_00001.jpg", "img_00002.jpg"]
    assert finished_videos(tmp_path)["walk/v1"]["n_frames"] == 2
    assert np.abs(read_image(tmp_path / "walk/v1/img_00001.jpg", grey=False).astype(int) - 90).max() <= 2

    with pytest.raises(RuntimeError), RawframeVideoWriter(tmp_path, "walk/v2") as writer:
        writer.write_rgb(1, rgb)
        raise RuntimeError("killed")
    assert not (tmp_path / "walk/v2.partial").exists() and not (tmp_path / "walk/v2").exists()

    # Rewriting a finished video withdraws its record until the new folder is in place.
    writer = RawframeVideoWriter(tmp_path, "walk/v1")
    assert "walk/v1" not in finished_videos(tmp_path)


@pytest.mark.parametrize("video_id,label", [("v1", "../../victim"), ("Run/..", "Run"), ("a/b", "/etc"),
                                            ("x", "a\\b"), ("Run/v\x00", "Run")])
def test_labels_and_ids_never_make_a_folder_outside_the_root(tmp_path, video_id, label):
    with pytest.raises(UnsafePathError):
        frame_dir_of(video_id, label)
    root = tmp_path / "out" / "root"
    root.mkdir(parents=True)
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("mine")
    for frame_dir in ("../../victim", "Run/..", "../root2/x", "/abs/x"):
        with pytest.raises(UnsafePathError):
            RawframeVideoWriter(root, frame_dir)
    assert (tmp_path / "victim" / "keep.txt").read_text() == "mine" and not list(tmp_path.glob("out/root2"))


def test_a_link_out_of_the_root_is_not_followed(tmp_path):
    root = tmp_path / "root"
    (tmp_path / "elsewhere").mkdir()
    root.mkdir()
    (root / "Run").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match="outside"):
        RawframeVideoWriter(root, "Run/v1")


def test_export_replaces_only_folders_its_own_records_say_it_wrote(tmp_path):
    rgb = np.full((8, 8, 3), 90, np.uint8)
    users = tmp_path / "Run" / "v1"
    users.mkdir(parents=True)
    (users / "img_00001.jpg").write_bytes(b"the user's own frame")
    with pytest.raises(RawframesError, match="not written by this export"):
        RawframeVideoWriter(tmp_path, "Run/v1")
    assert (users / "img_00001.jpg").read_bytes() == b"the user's own frame"
    (tmp_path / "Run" / "v2.partial").mkdir()  # a stray folder named like our partial ones
    with pytest.raises(RawframesError, match="not written by this export"):
        RawframeVideoWriter(tmp_path, "Run/v2")
    assert (tmp_path / "Run" / "v2.partial").is_dir()
    for _ in range(2):  # ours: rewritten in place the second time
        with RawframeVideoWriter(tmp_path, "Run/v3") as writer:
            writer.write_rgb(1, rgb)
            writer.commit({"video_id": "Run/v3"})
    assert "Run/v3" in finished_videos(tmp_path)
    with RawframeVideoWriter(tmp_path, "Run/v1", overwrite=True) as writer:  # the user's consent
        writer.write_rgb(1, rgb)
        writer.commit({"video_id": "Run/v1"})
    # A done record naming a folder outside the root (planted) is never trusted.
    (tmp_path / ".im2flow" / "done" / "evil.json").write_text('{"frame_dir": "../.."}')
    assert set(finished_videos(tmp_path)) == {"Run/v1", "Run/v3"}


def test_a_non_empty_folder_without_our_state_is_refused_unless_overwrite(tmp_path):
    check_export_root(tmp_path / "new", overwrite=False)
    (tmp_path / "user.txt").write_text("x")
    with pytest.raises(RawframesError, match="not empty"):
        check_export_root(tmp_path, overwrite=False)
    check_export_root(tmp_path, overwrite=True)
    check_export_settings(tmp_path, {"source": "flow"})
    check_export_root(tmp_path, overwrite=False)  # an export of ours: resumed


def test_annotation_lists_round_trip_with_mmaction2_names(tmp_path):
    videos = [{"frame_dir": "b/v2", "label": "b", "split": "test", "n_frames": 5, "n_flows": 4},
              {"frame_dir": "a/v1", "label": "a", "split": "train", "n_frames": 7, "n_flows": 6},
              {"frame_dir": "a/v3", "label": "a", "split": "unused", "n_frames": 3, "n_flows": 2}]
    paths = write_annotation_lists(tmp_path, "ucf101", 2, videos, ["a", "b"])
    assert sorted(p.name for p in paths) == ["classInd.txt", "ucf101_train_split_2_rawframes.txt",
                                             "ucf101_train_split_2_rawframes_flow.txt",
                                             "ucf101_val_split_2_rawframes.txt",
                                             "ucf101_val_split_2_rawframes_flow.txt"]
    assert (tmp_path / "classInd.txt").read_text() == "1 a\n2 b\n"
    assert (tmp_path / "ucf101_train_split_2_rawframes.txt").read_text() == "a/v1 7 0\n"
    assert (tmp_path / "ucf101_val_split_2_rawframes_flow.txt").read_text() == "b/v2 4 1\n"
    entries, classes = read_annotation_lists(tmp_path, 2)
    assert entries == {"a/v1": (0, "train"), "b/v2": (1, "test")} and classes == ["a", "b"]
    assert read_annotation_lists(tmp_path, 1) is None
    (tmp_path / "broken_train_split_3_rawframes.txt").write_text("a/v1 7\n")
    with pytest.raises(RawframesError, match="broken_train_split_3_rawframes.txt:1"):
        read_annotation_lists(tmp_path, 3)


def test_scanning_finds_one_and_two_level_folders_and_skips_partial_ones(tmp_path):
    for folder, names in {"Run/v_a": ["img_00001.jpg", "flow_x_00000.jpg", "flow_y_00000.jpg"],
                          "Run/v_b.partial": ["img_00001.jpg"], "v_flat": ["img_00001.jpg", "img_00002.jpg"],
                          "Run/notes": ["readme.txt"], ".im2flow/done": ["x.json"]}.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            (tmp_path / folder / name).write_bytes(b"x")
    found = {f.frame_dir: f for f in scan_rawframes(tmp_path)}
    assert sorted(found) == ["Run/v_a", "v_flat"]
    assert found["Run/v_a"].files == {"img": {1: "img_00001.jpg"}, "flow_x": {0: "flow_x_00000.jpg"},
                                      "flow_y": {0: "flow_y_00000.jpg"}}
    assert found["v_flat"].size_bytes == 2
    assert scan_folder(tmp_path / "Run/notes", "Run/notes").files["img"] == {}
    with pytest.raises(RawframesError, match="not a folder"):
        scan_rawframes(tmp_path / "missing")


def test_export_settings_must_match_an_earlier_export(tmp_path):
    check_export_settings(tmp_path, {"bound_px": 20.0, "store": "abc"})
    check_export_settings(tmp_path, {"bound_px": 20.0, "store": "abc"})
    with pytest.raises(RawframesError, match="bound_px"):
        check_export_settings(tmp_path, {"bound_px": 10.0, "store": "abc"})


def test_only_local_folders_are_rawframes_roots(tmp_path):
    assert local_root(str(tmp_path)) == Path(tmp_path)
    with pytest.raises(RawframesError, match="local"):
        local_root("memory://bucket/raw")


def test_frame_folders_get_official_splits(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Run\n2 Swim\n")
    (lists / "trainlist01.txt").write_text("Run/v_Run_g01_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("Swim/v_Swim_g02_c01.avi\n")
    root = tmp_path / "rawframes"
    root.mkdir()
    assert split_files_layout(root) is DatasetLayout.ucf101
    videos = [("Run/v_Run_g01_c01", "Run"), ("Swim/v_Swim_g02_c01", "Swim"), ("Swim/v_Swim_g09_c01", "Swim")]
    assert assign_splits(root, videos, "ucf101") == {"Run/v_Run_g01_c01": "train", "Swim/v_Swim_g02_c01": "test",
                                                    "Swim/v_Swim_g09_c01": "unused"}
    hmdb = tmp_path / "hmdb"
    (hmdb / "splits").mkdir(parents=True)
    (hmdb / "splits" / "wave_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    frames = hmdb / "frames"
    frames.mkdir()
    assert split_files_layout(frames) is DatasetLayout.hmdb51
    assert assign_splits(frames, [("wave/a", "wave"), ("wave/b", "wave"), ("wave/c", "wave")], "hmdb51") == {
        "wave/a": "train", "wave/b": "test", "wave/c": "unused"}
    plain = tmp_path / "elsewhere" / "plain"
    plain.mkdir(parents=True)
    assert split_files_layout(plain) is DatasetLayout.folders
    groups = [(f"c{c}/v_c{c}_g{g:02d}_c01", f"c{c}") for c in range(2) for g in range(10)]
    splits = assign_splits(plain, groups, "folders", test_fraction=0.3)
    assert set(splits.values()) == {"train", "test"} and list(splits.values()).count("test") >= 4
