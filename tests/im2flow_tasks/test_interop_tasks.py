"""Export a flow store as rawframes and import it back, video by video (no services): counts, errors, reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.rawframe_flow import alignment_errors, gray_to_flow, misaligned_offset
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage import open_flow_store
from im2flow_storage.flow_store import create_flow_store
from im2flow_storage.rawframes import RawframesError, finished_videos, read_image
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.export import export_hallucinated_video, export_store_video, with_frame_dirs
from im2flow_tasks.import_manifest import imported_store_config
from im2flow_tasks.import_rawframes import import_folder
from im2flow_tasks.interop_config import ImportConfig
from tests.conftest import real_texture

BOUND = 20.0
JPEG_LEVELS = 2  # grey levels a quality-95 JPEG of a smooth flow image may move (measured: ≤ 1.47 incl. rounding)


def _clip(shifts: list[float], height: int = 48, width: int = 64, which: int = 0):
    """RGB frames of a real photo whose content moves right by shifts[i] px, and a smooth flow near that motion."""
    starts = [int(sum(shifts)) + 4]
    for s in shifts:
        starts.append(starts[-1] - int(s))
    big = real_texture(height, width + starts[0] + 4, which)
    frames = [np.ascontiguousarray(big[:, c : c + width]) for c in starts]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    flows = [np.stack([s + 0.6 * np.sin(cols / 9.0), 0.8 * np.cos(rows / 7.0) - 0.3], -1).astype(np.float32)
             for s in shifts]
    return frames, flows


def _store(work: Path) -> str:
    store = create_flow_store(str(work), ExtractConfig(algorithm="dis", short_side=48).store_config(), {})
    for video_id, label, split, shifts, which in (("Run/v_Run_g01_c01", "Run", "train", [3, 1, 6, 2, 5], 0),
                                                  ("Jump/v_Jump_g02_c01", "Jump", "test", [25, 2, 24, 3], 1)):
        frames, flows = _clip(shifts, which=which)
        writer = store.begin_video(video_id, label=label, split=split, source_size=1, source_mtime=0.0, shard_frames=4)
        for t, rgb in enumerate(frames):
            writer.append(rgb, encode_flow(flows[t]) if t < len(flows) else None)
        writer.finish()
    return store.url


def _video(video_id: str, label: str, split: str) -> dict:
    return {"video_id": video_id, "label": label, "split": split, "frame_dir": video_id}


@pytest.fixture()
def exported(tmp_path):
    store_url = _store(tmp_path / "work")
    out = tmp_path / "raw"
    out.mkdir()
    store = open_flow_store(store_url)
    outcomes = [export_store_video(store, _video("Run/v_Run_g01_c01", "Run", "train"), str(out), BOUND, 95),
                export_store_video(store, _video("Jump/v_Jump_g02_c01", "Jump", "test"), str(out), BOUND, 95)]
    return store_url, out, outcomes


def _folder_flow(folder: Path, k: int) -> np.ndarray:
    return gray_to_flow(read_image(folder / f"flow_x_{k:05d}.jpg", True), read_image(folder / f"flow_y_{k:05d}.jpg",
                                                                                     True),
                        BOUND)


def test_export_writes_exact_counts_rgb_within_jpeg_error_and_counts_clipping(exported):
    store_url, out, outcomes = exported
    store = open_flow_store(store_url)
    assert [o["status"] for o in outcomes] == ["exported", "exported"]
    for outcome in outcomes:
        video_id = outcome["video_id"]
        folder = out / video_id
        rec = store.record(video_id)
        names = sorted(p.name for p in folder.iterdir())
        assert [n for n in names if n.startswith("img_")] == [f"img_{k:05d}.jpg" for k in range(1, rec.n_frames + 1)]
        assert [n for n in names if n.startswith("flow_x_")] == [f"flow_x_{k:05d}.jpg" for k in range(1,
                                                                                                      rec.n_flows + 1)]
        assert outcome["n_frames"] == rec.n_frames and outcome["n_flows"] == rec.n_frames - 1
        for t, rgb in enumerate(store.iter_rgb(video_id)):
            diff = np.abs(read_image(folder / f"img_{t + 1:05d}.jpg", False).astype(int) - rgb)
            assert diff.mean() < 2.0 and diff.max() <= 40
        clipped = 0
        for t, flow in enumerate(store.iter_flow(video_id)):
            back = _folder_flow(folder, t + 1)
            inside = np.abs(flow) <= BOUND
            clipped += int((~inside).sum())
            assert np.abs(back - flow)[inside].max() <= BOUND / 255 + JPEG_LEVELS * 2 * BOUND / 255
            assert np.allclose(back[~inside], np.sign(flow[~inside]) * BOUND, atol=JPEG_LEVELS * 2 * BOUND / 255)
        assert outcome["n_clipped"] == clipped
        # Numbering by content: exported flow k warps img k onto img k + 1, better than onto its neighbours.
        frames = {k: read_image(folder / f"img_{k:05d}.jpg", False) for k in range(1, rec.n_frames + 1)}
        flows = {k: _folder_flow(folder, k) for k in range(2, rec.n_flows)}
        errors = alignment_errors(frames, flows)
        assert misaligned_offset(errors) == 0 and errors[0] < 0.8 * min(errors[-1], errors[1])
    assert outcomes[0]["n_clipped"] == 0 and outcomes[1]["n_clipped"] > 0  # Jump moves 24-25 px: beyond ±20
    assert set(finished_videos(out)) == {"Run/v_Run_g01_c01", "Jump/v_Jump_g02_c01"}


def _import(tmp_path: Path, folder: Path, frame_dir: str, check: bool = True) -> tuple[dict, str]:
    work = tmp_path / "imported"
    config = ImportConfig(bound_px=BOUND)
    store = create_flow_store(str(work), imported_store_config(folder.parent.parent, config), {})
    return import_folder(store.url, str(folder), frame_dir, "Run", "train", BOUND, check, 32), store.url


def test_import_of_an_export_reproduces_what_was_exported(exported, tmp_path):
    _, out, _ = exported
    folder = out / "Run/v_Run_g01_c01"
    outcome, url = _import(tmp_path, folder, "Run/v_Run_g01_c01")
    assert outcome["status"] == "complete", outcome["error"]
    assert outcome["numbering"] == "img from 1, flow from 1" and outcome["n_frames"] == 6 and outcome["n_flows"] == 5
    store = open_flow_store(url)
    flows = list(store.iter_flow("Run/v_Run_g01_c01"))
    for k, flow in enumerate(flows, start=1):
        # The store's codec bound (end-point error ≤ 0.085 px) on top of exactly what the JPEGs hold.
        assert np.linalg.norm(flow - _folder_flow(folder, k), axis=-1).max() <= 0.085 + 1e-6
    for k, rgb in enumerate(store.iter_rgb("Run/v_Run_g01_c01"), start=1):
        assert np.abs(rgb.astype(int) - read_image(folder / f"img_{k:05d}.jpg", False)).mean() < 2.0
    record = store.record("Run/v_Run_g01_c01")
    assert record.complete and record.label == "Run" and record.split == "train"
    assert store.config["algorithm"] == "imported" and store.config["params"]["bound_px"] == BOUND


def test_denseflow_numbering_from_zero_imports_the_same_flow(exported, tmp_path):
    _, out, _ = exported
    folder = out / "Run/v_Run_g01_c01"
    zero = tmp_path / "dense" / "Run" / "v_Run_g01_c01"
    shutil.copytree(folder, zero)
    for axis in "xy":
        for k in range(1, 6):
            (zero / f"flow_{axis}_{k:05d}.jpg").rename(zero / f"flow_{axis}_{k - 1:05d}.jpg.tmp")
        for tmp in zero.glob("*.tmp"):
            tmp.rename(tmp.with_suffix(""))
    outcome, url = _import(tmp_path, zero, "Run/v_Run_g01_c01")
    assert outcome["status"] == "complete" and outcome["numbering"] == "img from 1, flow from 0"
    flows = list(open_flow_store(url).iter_flow("Run/v_Run_g01_c01"))
    assert np.abs(flows[0] - _folder_flow(folder, 1)).max() < 0.1


def test_flow_shifted_by_a_frame_fails_the_content_check(exported, tmp_path):
    _, out, _ = exported
    shifted = tmp_path / "shifted" / "Run" / "v_Run_g01_c01"
    shutil.copytree(out / "Run/v_Run_g01_c01", shifted)
    for axis in "xy":  # flow k now holds what belongs to frame k + 1 (the last wraps round)
        names = [shifted / f"flow_{axis}_{k:05d}.jpg" for k in range(1, 6)]
        data = [n.read_bytes() for n in names]
        for name, blob in zip(names, data[1:] + data[:1]):
            name.write_bytes(blob)
    outcome, _ = _import(tmp_path, shifted, "Run/v_Run_g01_c01")
    assert outcome["status"] == "failed" and "off its RGB" in outcome["error"] and "img k+1" in outcome["error"]
    unchecked, _ = _import(tmp_path, shifted, "Run/v_Run_g01_c01", check=False)
    assert unchecked["status"] == "complete"


@pytest.mark.parametrize("damage, reason", [
    ("drop_last", "4 flows for 6 frames, expected 5 (denseflow's dropped last batch?)"),
    ("missing_y", "flow_y_00003 missing"),
    ("unreadable", "img_00002.jpg: missing or not a readable image"),
])
def test_damaged_folders_are_recorded_with_a_reason(exported, tmp_path, damage, reason):
    _, out, _ = exported
    folder = tmp_path / damage / "Run" / "v_Run_g01_c01"
    shutil.copytree(out / "Run/v_Run_g01_c01", folder)
    if damage == "drop_last":
        (folder / "flow_x_00005.jpg").unlink()
        (folder / "flow_y_00005.jpg").unlink()
    elif damage == "missing_y":
        (folder / "flow_y_00003.jpg").unlink()
    else:
        (folder / "img_00002.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    outcome, url = _import(tmp_path, folder, "Run/v_Run_g01_c01", check=damage != "unreadable")
    assert outcome["status"] == "failed" and reason in outcome["error"]
    assert open_flow_store(url).video_ids == []  # never marked complete


def test_hallucinated_export_gives_every_frame_a_flow(tmp_path):
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    frames = [real_texture(40, 56, which=i % 2) for i in range(3)]
    record = {"video_id": "Run/v1", "label": "Run", "split": "test", "frame_dir": "Run/v1"}
    outcome = export_hallucinated_video(generator, frames, str(tmp_path), record, BOUND, 95, "cpu", batch_size=2)
    assert outcome["status"] == "exported" and outcome["n_frames"] == 3 and outcome["n_flows"] == 3
    assert read_image(tmp_path / "Run/v1/flow_x_00003.jpg", True).shape == (40, 56)


def test_tasks_carry_about_the_same_work():
    from im2flow_tasks.batching import batches_by_work

    sizes = [5, 300, 7, 7, 7, 2000, 1, 1]
    batches = batches_by_work(sizes, float, per_task=310, min_tasks=1)
    assert [sum(b) for b in batches] == [305, 21, 2000, 2] and [x for b in batches for x in b] == sizes
    small = batches_by_work([8] * 320, float, per_task=2000)  # the demo: 320 clips of 8 frames
    assert len(small) == 16 and {len(b) for b in small} == {20}
    assert batches_by_work([], float, 10) == []


def test_folders_a_case_insensitive_disk_would_merge_are_refused_and_unsafe_names_fail_alone():
    with pytest.raises(RawframesError, match="case or normalisation"):
        with_frame_dirs([{"video_id": "Run/v1", "label": "Run"}, {"video_id": "run/v1", "label": "run"}])
    with pytest.raises(RawframesError, match="case or normalisation"):  # é composed and decomposed
        with_frame_dirs([{"video_id": "Caf\u00e9/v1", "label": "Caf\u00e9"},
                          {"video_id": "Cafe\u0301/v1", "label": "Cafe\u0301"}])
    good, bad = with_frame_dirs([{"video_id": "Run/v1", "label": "Run"}, {"video_id": "v2", "label": "../x"}])
    assert [v["frame_dir"] for v in good] == ["Run/v1"]
    assert bad[0]["status"] == "failed" and "'../x'" in bad[0]["error"]
