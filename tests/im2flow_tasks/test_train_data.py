"""Training data for φ and the recognition streams: classifiers of mirror-image classes train without flips."""

import numpy as np
import pytest

from im2flow_storage import open_flow_store
from im2flow_tasks.recognize_data import frames_data, stream_dataset
from im2flow_tasks.train_data import TrainingData, make_datasets
from tests.conftest import make_tiny_store


def _mean_cos(dataset, epochs=4) -> list[float]:
    """Magnitude-weighted mean of cos θ (the flow image's 2nd channel) of every item, over `epochs` epochs."""
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            flow = dataset[i]["flow"].numpy()
            out.append(float((flow[1] * flow[2]).sum() / max(flow[2].sum(), 1e-6)))
    return out


@pytest.mark.parametrize("hflip", [True, False])
def test_flips_follow_the_setting_for_phi_and_the_recognition_streams(tmp_path, hflip):
    make_tiny_store(tmp_path, actions=("swim_left",), groups=3)
    store = open_flow_store(str(tmp_path))
    videos = [r.video_id for r in store.records(complete_only=True) if r.split == "train"]
    phi_train, _ = make_datasets(store, TrainingData(store.url, ["swim_left"], videos, videos[:1],
                                                     {v: 0 for v in videos}),
                                 32, 36, 2.0, 0, None, hflip)
    stream_train = stream_dataset(frames_data(store, "test", 0.34, 0, None, None), "train", 32, 2.0, 0, hflip)
    for dataset in (phi_train, stream_train):
        signs = np.sign(_mean_cos(dataset))
        # A fish swimming left: cos θ < 0 on it; a flipped sample swims right.
        assert (signs < 0).any() and (signs > 0).any() == hflip
