def test_evaluation_keeps_only_extreme_examples():
    from tasks.evaluate import _keep_extremes

    rows = [{"method": "Im2Flow", "video_id": f"v{i}", "t": 0, "epe": float(e)} for i, e in enumerate([5, 1, 9, 3, 7])]
    examples = {(r["video_id"], 0): i for i, r in enumerate(rows)}
    _keep_extremes(examples, rows, 1)
    assert set(examples) == {("v1", 0), ("v2", 0)}  # the best (EPE 1) and the worst (EPE 9)
