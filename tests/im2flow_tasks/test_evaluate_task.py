def test_evaluation_keeps_only_extreme_examples():
    from im2flow_tasks.evaluate import _keep_extremes

    rows = [{"method": "Im2Flow", "video_id": f"v{i}", "t": 0, "epe": float(e)} for i, e in enumerate([5, 1, 9, 3, 7])]
    examples = {(r["video_id"], 0): i for i, r in enumerate(rows)}
    _keep_extremes(examples, rows, 1)
    assert set(examples) == {("v1", 0), ("v2", 0)}  # the best (EPE 1) and the worst (EPE 9)


def test_nearest_neighbour_read_back_from_the_store_equals_the_in_memory_search(tmp_path):
    import numpy as np

    from im2flow_core.baselines import appearance_descriptor, resize_flow
    from im2flow_storage import open_flow_store
    from im2flow_tasks.benchmark_stores import write_synthetic_store
    from im2flow_tasks.config import EvalConfig
    from im2flow_tasks.evaluate import fit_baselines

    store = open_flow_store(write_synthetic_store(tmp_path, actions=("swim_left", "spin_cw", "bounce"), n_frames=5))
    config = EvalConfig(baseline_frames_per_video=3)
    baselines = fit_baselines(store, config)
    assert not hasattr(baselines.nearest, "flows")  # it keeps descriptors and keys, no flows
    # The search as it was, everything in memory: every sampled training frame's flow in a list.
    train = [(r.video_id, t) for r in store.records(complete_only=True) if r.split == "train" for t in (0, 2, 3)]
    assert sorted(baselines.nearest.keys) == sorted(train)
    pairs = [store.read_pair(v, t) for v, t in baselines.nearest.keys]
    descriptors = np.stack([appearance_descriptor(rgb, config.nn_descriptor_size) for rgb, _ in pairs])
    tests = [r.video_id for r in store.records(complete_only=True) if r.split == "test"]
    assert len(tests) == 3
    for video_id in tests:
        for t in range(4):
            rgb, _ = store.read_pair(video_id, t)
            nearest = int(np.argmin(((descriptors - appearance_descriptor(rgb,
                                                                          config.nn_descriptor_size)) ** 2).sum(1)))
            expected = resize_flow(pairs[nearest][1], *rgb.shape[:2])
            np.testing.assert_array_equal(baselines.nearest.predict(rgb), expected)


def test_evaluation_and_potential_read_the_stores_records_once(tmp_path, monkeypatch):
    """On an object store every `records()` is a request per video: a stage reads them once, not per helper."""
    import torch

    from im2flow_core.unet import GeneratorConfig, UNetGenerator
    from im2flow_storage import open_flow_store
    from im2flow_storage.checkpoints import save_checkpoint
    from im2flow_storage.flow_store import FlowStore
    from im2flow_tasks.benchmark_stores import write_synthetic_store
    from im2flow_tasks.config import EvalConfig
    from im2flow_tasks.evaluate import evaluate_split, fit_baselines
    from im2flow_tasks.potential import split_samples

    store = open_flow_store(write_synthetic_store(tmp_path, actions=("swim_left", "spin_cw", "bounce"), n_frames=5))
    torch.manual_seed(0)
    generator_config = GeneratorConfig(depth=3, ngf=4, input_size=32)
    model = str(tmp_path / "g.pt")
    save_checkpoint(model, {"kind": "im2flow-generator", "generator_config": generator_config.model_dump(mode="json"),
                            "labels": ["a", "b", "c"], "state_dict": UNetGenerator(generator_config).state_dict()})
    calls = []
    records = FlowStore.records

    def counted(self, complete_only=False):
        calls.append(complete_only)
        return records(self, complete_only)

    monkeypatch.setattr(FlowStore, "records", counted)
    config = EvalConfig(frames_per_video=2, baseline_frames_per_video=2, device="cpu")
    result = evaluate_split.fn(store.url, model, str(tmp_path), config, f"sqlite:///{tmp_path}/mlflow.db")
    assert calls == [True]  # the stage's one read; the baselines and both sample indices reuse it
    assert len(result["rows"]) == 4 * 3 * 2  # four methods, three test videos, two frames each
    calls.clear()
    complete = store.records(complete_only=True)
    baselines = fit_baselines(store, config, records=complete)
    samples = split_samples(store, "test", 2, complete)
    assert calls == [True] and len(samples) == 6  # three test videos, two frames each
    assert baselines.nearest.keys == fit_baselines(store, config).nearest.keys  # the same frames as reading them
