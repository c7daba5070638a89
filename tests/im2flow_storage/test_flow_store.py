import cv2
import numpy as np
import pytest
import zarr

from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_storage import FlowStoreError, open_flow_store
from im2flow_storage.codecs import FlowImageCodec
from im2flow_storage.flow_store import config_fingerprint, create_flow_store, video_key
from im2flow_storage.manifest import MANIFEST_SCHEMA, ManifestError, write_manifest

CONFIG = {"algorithm": "tvl1", "params": {"warps": 5}, "step": 2, "frame_stride": 1, "max_frames": None,
          "resize": {"short_side": 64, "size": None},
          "encoding": {"flow_codec": {"mode": "bounded", "effort": 3}, "rgb_format": "png", "rgb_quality": 95}}


@pytest.mark.parametrize("compression,max_epe", [({"mode": "bounded"}, 0.085),
                                                  ({"mode": "bounded", "max_error_px": 0.02, "distance": 0.5}, 0.02),
                                                  ({"mode": "quantized", "step_px": 1 / 16}, 0.0442)])
def test_flow_codec_error_is_bounded_up_to_its_bound(compression, max_epe):
    codec = FlowImageCodec(**compression, effort=3)
    rng = np.random.default_rng(0)
    smooth = cv2.resize(rng.normal(0, 8, (6, 8, 2)).astype(np.float32), (64, 48), interpolation=cv2.INTER_CUBIC)
    flow = np.stack([smooth, rng.uniform(-60, 60, (48, 64, 2)).astype(np.float32)])  # smooth and noisy fields
    flow[0, :4] = 0.0
    bound = codec.bound_px
    flow[1, 0, 0] = [bound - 0.01, -(bound - 0.01)]  # far out, still within the bound: not clipped
    flow[1, 0, 1] = [-(bound + 50), 10.0]  # beyond it: clipped to the bound
    back = codec.decode_frames(codec.encode_frames(encode_flow(flow)), (2, 48, 64, 3))
    assert back.shape == (2, 48, 64, 3) and back.dtype == np.float32
    decoded = decode_flow(back)
    assert abs(decoded[1, 0, 1, 0] + bound) <= max_epe and abs(decoded[1, 0, 1, 1] - 10.0) <= max_epe
    flow[1, 0, 1, 0] = -bound
    err = np.linalg.norm(decoded - flow, axis=-1)
    assert err.max() <= max_epe + 1e-4, err.max()
    assert err.max() < 0.1
    assert np.abs(decoded[0, :4]).max() <= max_epe
    back = FlowImageCodec.from_dict(codec.to_dict())
    assert codec == back and hash(codec) == hash(back)


def test_flow_codec_rejects_bad_parameters():
    with pytest.raises(ValueError, match="max_error_px"):
        FlowImageCodec(mode="bounded", max_error_px=5)
    with pytest.raises(ValueError, match="unknown flow compression mode"):
        FlowImageCodec(mode="zip")
    assert FlowImageCodec().bound_px == pytest.approx(128.0)


def test_store_round_trip_alignment_and_sharding(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {"opencv": "test"})
    assert store.url.endswith(f"flows/tvl1-{config_fingerprint(CONFIG)}.zarr")
    rng = np.random.default_rng(1)
    n, step = 11, 2
    frames = rng.integers(0, 255, (n, 20, 28, 3), dtype=np.uint8)
    flows = rng.normal(0, 3, (n - step, 20, 28, 2)).astype(np.float32)
    writer = store.begin_video("A/clip 1", label="A", split="train", source_size=10, source_mtime=1.5, shard_frames=4)
    for t in range(n):
        writer.append(frames[t], encode_flow(flows[t]) if t < n - step else None)
    record = writer.finish()
    assert (record.n_frames, record.n_flows, record.complete) == (n, n - step, True)
    reader = open_flow_store(str(tmp_path))
    assert reader.video_ids == ["A/clip 1"] and reader.step == step
    for t in (0, 4, n - step - 1):
        rgb, flow = reader.read_pair("A/clip 1", t)
        np.testing.assert_array_equal(rgb, frames[t])  # PNG: lossless
        assert np.linalg.norm(flow - flows[t], axis=-1).max() <= 0.085 + 1e-4  # the default bounded codec
    with pytest.raises(IndexError):
        reader.read_pair("A/clip 1", n - step)
    array = zarr.open_group(reader.url, mode="r")[f"videos/{video_key('A/clip 1')}/flow"]
    assert array.chunks == (1, 20, 28, 3) and array.shards == (4, 20, 28, 3)
    shard_files = list((tmp_path / reader.url.split(str(tmp_path))[1].lstrip("/")).rglob("c/*/0/0/0"))
    assert len(shard_files) == 2 * 3  # rgb: 11 frames / 4 -> 3 shards; flow: 9 / 4 -> 3 shards


def test_partial_video_is_never_complete_and_is_redone(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {})
    writer = store.begin_video("v", label="A", split="train", source_size=1, source_mtime=0.0, shard_frames=2)
    for t in range(5):  # a crash after these: shards were written, finish() never ran
        writer.append(np.zeros((8, 8, 3), np.uint8), encode_flow(np.ones((8, 8, 2), np.float32)))
    reader = open_flow_store(str(tmp_path))
    assert not reader.is_complete("v") and reader.video_ids == []
    assert reader.record("v").complete is False
    with pytest.raises(FlowStoreError, match="incomplete"):
        reader.read_pair("v", 0)
    writer = store.begin_video("v", label="A", split="train", source_size=1, source_mtime=0.0, shard_frames=2)
    for t in range(3):
        writer.append(np.full((8, 8, 3), t, np.uint8), encode_flow(np.ones((8, 8, 2), np.float32)) if t < 1 else None)
    assert writer.finish().n_frames == 3
    assert store.is_complete("v", source_size=1, source_mtime=0.0)
    assert not store.is_complete("v", source_size=2)  # the source changed: redo
    assert open_flow_store(str(tmp_path)).record("v").n_flows == 1


def _store_with_one_video(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {})
    writer = store.begin_video("v", label="A", split="train", source_size=1, source_mtime=0.0)
    for t in range(3):
        writer.append(np.full((8, 8, 3), t, np.uint8), encode_flow(np.ones((8, 8, 2), np.float32)) if t < 1 else None)
    writer.finish()
    return store


def test_a_store_is_never_created_over_one_that_is_there(tmp_path, monkeypatch):
    store = _store_with_one_video(tmp_path)
    # An object store's `exists` answers False on a transient error: the store must survive it.
    monkeypatch.setattr("im2flow_storage.flow_store.exists", lambda url: False)
    again = create_flow_store(str(tmp_path), CONFIG, {})
    assert again.video_ids == ["v"] and again.fingerprint == store.fingerprint
    monkeypatch.undo()
    # The root metadata itself lost: it is written back from the configuration, the videos stay.
    (tmp_path / "flows" / store.url.rsplit("/", 1)[-1] / "zarr.json").unlink()
    repaired = create_flow_store(str(tmp_path), CONFIG, {})
    assert repaired.video_ids == ["v"] and repaired.config == store.config
    assert open_flow_store(str(tmp_path)).read_pair("v", 0)[0][0, 0, 0] == 0


def test_count_invariant_is_enforced(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {})
    writer = store.begin_video("v", label="A", split="train", source_size=1, source_mtime=0.0)
    writer.append(np.zeros((8, 8, 3), np.uint8), None)
    writer.append(np.zeros((8, 8, 3), np.uint8), None)
    with pytest.raises(ValueError, match="needed"):
        writer.finish()


def test_different_configs_get_different_stores_and_selection(tmp_path):
    create_flow_store(str(tmp_path), CONFIG, {})
    other = create_flow_store(str(tmp_path), {**CONFIG, "step": 1}, {})
    with pytest.raises(FlowStoreError, match="2 flow stores"):
        open_flow_store(str(tmp_path))
    assert open_flow_store(str(tmp_path), fingerprint=other.fingerprint[:6]).step == 1
    assert open_flow_store(other.url).fingerprint == other.fingerprint
    with pytest.raises(FlowStoreError, match="no flow store"):
        open_flow_store(str(tmp_path / "nothing"))


def test_video_keys_are_reversible_and_safe():
    assert video_key("Class/v_a b%") == "v-Class+2fv_a+20b+25"
    assert video_key("a/b") != video_key("a_b")


def test_clipped_flow_is_counted_not_silent(tmp_path):
    config = {**CONFIG, "encoding": {**CONFIG["encoding"], "flow_codec": {"mode": "bounded", "bound_px": 300}}}
    store = create_flow_store(str(tmp_path), config, {})
    writer = store.begin_video("v", label="A", split="train", source_size=1, source_mtime=0.0)
    flow = np.zeros((8, 8, 2), np.float32)
    flow[0, :3, 0] = 400.0
    writer.append(np.zeros((8, 8, 3), np.uint8), encode_flow(flow))
    writer.append(np.zeros((8, 8, 3), np.uint8), None)
    writer.append(np.zeros((8, 8, 3), np.uint8), None)
    assert writer.finish().n_clipped == 3


def test_frame_reader_matches_zarr_and_dataset_tensors(tmp_path):
    from im2flow_storage.frame_reader import FrameReader, UnsupportedLayout
    from im2flow_storage.torch_datasets import FlowPairDataset, sample_index
    from tests.conftest import make_tiny_store

    url = make_tiny_store(tmp_path, actions=("swim_left", "bounce"), groups=1, size=24, n_frames=7)
    store = open_flow_store(url)
    group = zarr.open_group(url, mode="r")
    video_id = store.video_ids[0]
    arrays = group[f"videos/{video_key(video_id)}"]
    rgb_reader, flow_reader = FrameReader(arrays["rgb"]), FrameReader(arrays["flow"])
    for t in range(6):  # across two shards of 4 frames
        np.testing.assert_array_equal(rgb_reader.read(t), arrays["rgb"][t])
        np.testing.assert_array_equal(flow_reader.read(t), arrays["flow"][t])
        np.testing.assert_allclose(flow_reader.read_flow(t), decode_flow(arrays["flow"][t]), atol=1e-5)
    with pytest.raises(IndexError):
        flow_reader.read(6)
    plain = zarr.open_group(str(tmp_path / "other.zarr"), mode="w").create_array(
        "plain", shape=(3, 4, 4, 3), dtype="uint8", chunks=(1, 4, 4, 3))
    with pytest.raises(UnsupportedLayout):
        FrameReader(plain)
    samples = sample_index(store, store.video_ids, {v: i for i, v in enumerate(store.video_ids)})
    dataset = FlowPairDataset(url, samples, magnitude_scale_px=2.0)
    item = dataset[3]
    rgb, flow = store.read_pair(samples[3].video_id, samples[3].t)
    np.testing.assert_allclose(item["rgb"].numpy(), rgb.transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)
    image = encode_flow(flow)
    np.testing.assert_allclose(item["flow"][2].numpy(), image[..., 2] / 2.0, atol=1e-5)  # M / scale
    np.testing.assert_allclose(item["flow"][:2].numpy(), image[..., :2].transpose(2, 0, 1), atol=1e-5)
    assert item["label"].item() == samples[3].label
    import pickle

    clone = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker receives: no open handles
    assert clone._group is None and clone._readers == {}
    np.testing.assert_array_equal(clone[3]["rgb"].numpy(), item["rgb"].numpy())


def test_plain_zarr_reads_a_store_through_the_entry_points(tmp_path):
    import subprocess
    import sys

    from tests.conftest import make_tiny_store

    url = make_tiny_store(tmp_path, actions=("swim_left", "bounce"), groups=1, size=16, n_frames=3)
    key = video_key(open_flow_store(url).video_ids[0])
    code = (f"import zarr; a = zarr.open_group({url!r}, mode='r')['videos/{key}/flow'];"
            "print(a[0].shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(16, 16, 3)"


def test_corrupted_shard_bytes_fail_the_read_naming_video_and_frame(tmp_path):
    from im2flow_storage.frame_reader import CorruptFrame, FrameReader
    from im2flow_storage.torch_datasets import FlowPairDataset, sample_index
    from tests.conftest import make_tiny_store

    url = make_tiny_store(tmp_path, actions=("swim_left",), groups=1, size=24, n_frames=7)
    store = open_flow_store(url)
    video_id = store.video_ids[0]
    arrays = zarr.open_group(url, mode="r")[f"videos/{video_key(video_id)}"]
    assert any(type(c).__name__ == "Crc32cCodec" for c in arrays["rgb"].metadata.codecs[0].codecs)
    reader = FrameReader(arrays["rgb"], video_id)
    array_dir = tmp_path / "flows" / url.rsplit("/", 1)[1] / "videos" / video_key(video_id) / "rgb"
    shard = array_dir / "c" / "1" / "0" / "0" / "0"
    offset, size = reader._index(1)[1]  # frame 5 = shard 1, slot 1
    data = bytearray(shard.read_bytes())
    data[int(offset) + int(size) // 2] ^= 0x10  # one flipped bit inside frame 5's JPEG
    shard.write_bytes(bytes(data))
    fresh = FrameReader(arrays["rgb"], video_id)
    np.testing.assert_array_equal(fresh.read(4), arrays["rgb"][4])  # the neighbours still read
    with pytest.raises(CorruptFrame, match=rf"{video_id}.*frame 5"):
        fresh.read(5)
    with pytest.raises(ValueError, match="checksum"):  # plain zarr agrees
        arrays["rgb"][5]
    samples = [s for s in sample_index(store, [video_id], {video_id: 0}) if s.t == 5]
    with pytest.raises(CorruptFrame, match=video_id):
        FlowPairDataset(url, samples, 2.0)[0]
    # A damaged shard index is caught too.
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptFrame, match="index of shard 1"):
        FrameReader(arrays["rgb"], video_id).read(4)


def test_bounded_flow_frames_of_the_earlier_two_plane_layout_still_decode():
    import imagecodecs

    from im2flow_core.flow_encoding import quantize_flow
    from im2flow_storage.flow_compression import _OFFSET, BoundedFlowCompression, _to_uint16

    codec = BoundedFlowCompression()
    rng = np.random.default_rng(3)
    flow = cv2.resize(rng.normal(0, 6, (5, 7, 2)).astype(np.float32), (40, 24), interpolation=cv2.INTER_CUBIC)
    planes = codec.encode(flow)
    assert len(planes) == 2  # u and v side by side in one lossy plane, then the residual
    assert np.abs(codec.decode(planes) - flow).max() <= codec.max_error_px
    # As frames were written before: one lossy plane per component, the residual against their decode.
    levels = _to_uint16(quantize_flow(flow, codec._grid_px))
    old = [imagecodecs.jpegxl_encode(np.ascontiguousarray(levels[..., c]), distance=codec.distance, effort=7)
           for c in range(2)]
    approx = codec._lossy_decode(old)
    residual = np.rint((flow - approx) / codec._residual_step_px).astype(np.int32)
    old.append(imagecodecs.jpegxl_encode(np.ascontiguousarray((residual + 128).astype(np.uint8)), lossless=True))
    assert np.linalg.norm(codec.decode(old) - flow, axis=-1).max() <= codec.max_error_px + 1e-6
    assert _OFFSET == 32768


def _manifest_row(video_id, label, split, official, status="ok"):
    row = {name: None for name in MANIFEST_SCHEMA.names}
    return {**row, "video_id": video_id, "path": f"/d/{video_id}.avi", "label": label, "split": split,
            "status": status, "error": "", "official_splits": official}


def test_labels_and_splits_are_the_manifests_not_the_stores_copy(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {})
    for vid in ("Run/a", "Run/b", "Walk/c"):
        writer = store.begin_video(vid, label="old", split="train", source_size=1, source_mtime=0.0)
        for t in range(3):
            writer.append(np.zeros((8, 8, 3), np.uint8), encode_flow(np.ones((8, 8, 2), np.float32)) if t < 1 else None)
        writer.finish()
    # A re-ingest with split 2 changed the partition and dropped Walk/c: no re-extraction, the store follows.
    write_manifest([_manifest_row("Run/a", "Run", "test", "train,test,train"),
                    _manifest_row("Run/b", "Run", "train", "test,train,train")], str(tmp_path))
    reader = open_flow_store(str(tmp_path))
    assert {r.video_id: (r.label, r.split) for r in reader.records(complete_only=True)} == {
        "Run/a": ("Run", "test"), "Run/b": ("Run", "train"), "Walk/c": ("old", "unused")}
    assert reader.record("Run/a").split == "test"
    third = open_flow_store(store.url, split_index=3)  # by URL: the manifest beside the store is found
    assert {r.video_id: r.split for r in third.records()} == {"Run/a": "train", "Run/b": "train", "Walk/c": "unused"}
    assert open_flow_store(str(tmp_path), split_index=1).record("Run/b").split == "test"
    write_manifest([_manifest_row("Run/a", "Run", "train", "")], str(tmp_path))  # a folders layout: one split
    with pytest.raises(ManifestError, match="no official split 2"):
        open_flow_store(str(tmp_path), split_index=2).records()
