from im2flow_tasks.batching import batches_by_work, extract_work_seconds


def test_small_fractional_work_still_spreads_over_min_tasks():
    # 16 files of 20 KB: 0.32 MB in all, far below one task's 32 MB; each goes to its own task.
    batches = batches_by_work([0.02] * 16, float, per_task=32.0, min_tasks=32)
    assert len(batches) == 16 and all(len(b) == 1 for b in batches)
    many = batches_by_work([0.02] * 3200, float, per_task=32.0, min_tasks=32)
    assert 32 <= len(many) <= 34 and sum(map(len, many)) == 3200  # float sums differ a little across Pythons


def test_extraction_work_grows_with_frames_pixels_and_the_algorithm():
    row = {"n_frames": 190}
    ucf = extract_work_seconds(row, "tvl1", (340, 256))
    assert 190 * 0.087 * 10 < ucf < 190 * 0.087 * 14  # ~1 s a TV-L1 pair at 340×256 on one core
    assert extract_work_seconds(row, "dis", (340, 256)) < ucf / 3
    assert extract_work_seconds(row, "tvl1", (340, 256), frame_stride=2) < 0.6 * ucf
    assert extract_work_seconds(row, "tvl1", (340, 256), max_frames=10) < 0.1 * ucf
    tiny = extract_work_seconds({"n_frames": 8}, "dis", (32, 32))
    assert 0.05 <= tiny < 0.1  # a fixed cost per video dominates tiny clips
    # A UCF-101-sized job with TV-L1: tasks of about 30 core-seconds, i.e. one video each.
    rows = [row] * 1000
    batches = batches_by_work(rows, lambda r: extract_work_seconds(r, "tvl1", (340, 256)), 30.0, 32)
    assert len(batches) == 1000
    tiny_batches = batches_by_work([{"n_frames": 8}] * 13320, lambda r: extract_work_seconds(r, "dis", (32, 32)),
                                   30.0, 32)
    assert 32 <= len(tiny_batches) <= 40  # thousands of tiny clips: a few hundred per task


def test_extract_and_probe_batches_follow_the_config(tmp_path):
    from im2flow_tasks.batching import extract_batches, probe_batches
    from im2flow_tasks.config import ExtractConfig

    rows = [{"video_id": f"v{i}", "n_frames": 190, "width": 320, "height": 240} for i in range(100)]
    assert len(extract_batches(rows, ExtractConfig())) == 100  # TV-L1 at 256 px short side: a video a task
    dis = extract_batches(rows, ExtractConfig(algorithm="dis", short_side=32))
    assert 32 <= len(dis) <= 36 and [r for b in dis for r in b] == rows  # cheap: several a task, order kept
    files = []
    for i, size in enumerate((3_000_000, 10, 10, 10)):
        path = tmp_path / f"f{i}.avi"
        path.write_bytes(b"x" * size)
        files.append({"path": str(path)})
    files.append({"path": str(tmp_path / "missing.avi")})  # unreadable: counted as 1 MB, still probed
    batches = probe_batches(files, megabytes_per_task=1.0)
    assert batches[0] == [files[0]] and sum(map(len, batches)) == 5
    # Tiny clips are probed together: below PROBE_MIN_MEGABYTES_PER_TASK a task costs more than its decoding.
    tiny = []
    for i in range(16):
        path = tmp_path / f"tiny{i}.avi"
        path.write_bytes(b"x" * 20_000)
        tiny.append({"path": str(path)})
    assert probe_batches(tiny, megabytes_per_task=32.0) == [tiny]
    assert len(probe_batches(tiny, megabytes_per_task=0.05)) == 8  # a smaller configured size still wins
