import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from im2flow_storage.datasets import (
    DatasetError,
    DatasetLayout,
    detect_layout,
    scan_dataset,
    scan_dataset_with_evidence,
)
from im2flow_storage.manifest import MANIFEST_SCHEMA, ManifestError, read_manifest, write_manifest


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_layout_gets_a_stratified_split(tmp_path):
    for c in ("Run", "Walk"):
        for g in range(1, 6):
            _touch(tmp_path / c / f"v_{c}_g{g:02d}_c01.avi")
    _touch(tmp_path / "Run" / "readme.txt")  # not a video: ignored
    entries = scan_dataset(tmp_path)
    assert detect_layout(tmp_path) is DatasetLayout.folders
    assert len(entries) == 10 and {e.label for e in entries} == {"Run", "Walk"}
    assert entries[0].video_id == "Run/v_Run_g01_c01"
    for c in ("Run", "Walk"):
        assert sum(e.split == "test" for e in entries if e.label == c) == 2  # round(0.3 * 5)
    assert scan_dataset(tmp_path) == entries


def test_ucf101_layout(tmp_path):
    for name in ("v_Run_g01_c01", "v_Run_g02_c01", "v_Run_g03_c01"):
        _touch(tmp_path / "Run" / f"{name}.avi")
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Run\n")
    (lists / "trainlist01.txt").write_text("Run/v_Run_g01_c01.avi 1\n")
    (lists / "testlist01.txt").write_text("Run/v_Run_g02_c01.avi\n")
    (lists / "trainlist02.txt").write_text("Run/v_Run_g02_c01.avi 1\n")
    (lists / "testlist02.txt").write_text("Run/v_Run_g01_c01.avi\n")
    split = {e.video_id: e.split for e in scan_dataset(tmp_path)}
    assert split == {"Run/v_Run_g01_c01": "train", "Run/v_Run_g02_c01": "test", "Run/v_Run_g03_c01": "unused"}
    split2 = {e.video_id: e.split for e in scan_dataset(tmp_path, "ucf101", split_index=2)}
    assert split2["Run/v_Run_g01_c01"] == "test"
    with pytest.raises(DatasetError, match="testlist03"):
        scan_dataset(tmp_path, "ucf101", split_index=3)


def test_hmdb51_layout(tmp_path):
    for name in ("a.avi", "b.avi", "c.avi"):
        _touch(tmp_path / "videos" / "wave" / name)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "wave_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    entries = scan_dataset(tmp_path / "videos")
    assert {e.video_id: e.split for e in entries} == {"wave/a": "train", "wave/b": "test", "wave/c": "unused"}
    (splits / "wave_test_split1.txt").write_text("a.avi 7\n")
    with pytest.raises(DatasetError, match="0\\|1\\|2"):
        scan_dataset(tmp_path / "videos", "hmdb51")


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_list_layout(tmp_path, kind):
    rows = [{"path": f"clips/{i}.mp4", "label": "ab"[i % 2], "split": "test" if i == 0 else ""} for i in range(6)]
    for r in rows:
        _touch(tmp_path / r["path"])
    list_file = tmp_path / f"list.{kind}"
    if kind == "csv":
        with list_file.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, ["path", "label", "split"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), list_file)
    entries = scan_dataset(list_file)
    assert len(entries) == 6 and entries[0].video_id == "clips/0" and entries[0].split == "test"
    assert entries[0].path == str(tmp_path / "clips/0.mp4")
    assert all(e.split in ("train", "test") for e in entries)


def test_missing_root_and_duplicates(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "nope")
    _touch(tmp_path / "A" / "x.mp4")
    _touch(tmp_path / "A" / "x.avi")
    with pytest.raises(DatasetError, match="share the id"):
        scan_dataset(tmp_path)


def test_manifest_round_trip_and_errors(tmp_path):
    with pytest.raises(ManifestError, match="im2flow ingest"):
        read_manifest(str(tmp_path))
    row = {name: None for name in MANIFEST_SCHEMA.names}
    row.update(video_id="b", path="/x", label="A", split="train", status="ok", n_frames=3)
    write_manifest([row, {**row, "video_id": "a", "status": "corrupt"}], str(tmp_path))
    rows = read_manifest(str(tmp_path))
    assert [r["video_id"] for r in rows] == ["a", "b"] and rows[1]["n_frames"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_an_empty_or_unmounted_root_is_an_error_not_an_empty_dataset(tmp_path):
    (tmp_path / "mnt").mkdir()
    with pytest.raises(DatasetError, match="no videos found .* not mounted"):
        scan_dataset(tmp_path / "mnt")
    (tmp_path / "mnt" / "Run").mkdir()  # class folders, but no videos in them
    with pytest.raises(DatasetError, match="no videos found"):
        scan_dataset(tmp_path / "mnt")


def test_a_stray_hmdb_split_file_beside_the_root_does_not_switch_the_layout(tmp_path):
    for c in ("Run", "Walk"):
        for g in range(1, 4):
            _touch(tmp_path / "data" / c / f"v_{c}_g{g:02d}_c01.avi")
    (tmp_path / "brush_hair_test_split1.txt").write_text("x.avi 1\n")  # someone else's file
    entries, evidence = scan_dataset_with_evidence(tmp_path / "data")
    assert detect_layout(tmp_path / "data") is DatasetLayout.folders and "no UCF-101 or HMDB-51" in evidence
    assert {e.split for e in entries} == {"train", "test"}
    # Split files that do name its classes but none of its videos: an error naming the evidence.
    (tmp_path / "Run_test_split1.txt").write_text("other.avi 1\n")
    with pytest.raises(DatasetError, match="HMDB-51 split files named after class folders.*name none of the 6"):
        scan_dataset(tmp_path / "data")
    entries, evidence = scan_dataset_with_evidence(tmp_path / "data", "folders")
    assert len(entries) == 6 and evidence == "layout folders (as given)"

