import numpy as np
import pytest

from im2flow_core.frame_flows import iter_frame_flows


class RecordingEstimator:
    """Returns a flow whose every value encodes which frames it was given (their mean brightness)."""

    def calc(self, frame0, frame1):
        return np.stack([np.full(frame0.shape, frame0.mean(), np.float32),
                         np.full(frame0.shape, frame1.mean(), np.float32)], -1)

    def resolved_params(self):
        return {}


@pytest.mark.parametrize("n,step", [(1, 1), (2, 1), (7, 1), (7, 3), (5, 4), (3, 5)])
def test_flow_count_and_alignment(n, step):
    frames = [np.full((4, 5, 3), 10 * k, np.uint8) for k in range(n)]
    items = list(iter_frame_flows(frames, RecordingEstimator(), step))
    assert [i.index for i in items] == list(range(n))  # every frame, in order, none lost at the end
    with_flow = [i for i in items if i.flow is not None]
    assert len(with_flow) == max(n - step, 0)  # flow count = frame count - step
    for item in with_flow:  # flow t goes from frame t to frame t + step
        assert item.flow[0, 0, 0] == pytest.approx(10 * item.index)
        assert item.flow[0, 0, 1] == pytest.approx(10 * (item.index + step))
    assert all(i.flow is None for i in items[max(n - step, 0):])


def test_step_must_be_positive():
    with pytest.raises(ValueError):
        list(iter_frame_flows([], RecordingEstimator(), 0))
