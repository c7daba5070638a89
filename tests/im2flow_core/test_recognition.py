"""Late fusion, its weight selection, accuracy measures and the motion stream's frozen G."""

import numpy as np
import pytest
import torch

from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier
from im2flow_core.recognition import (
    MotionStream,
    confusion_matrix,
    fuse,
    mean_class_accuracy,
    select_fusion_weight,
    softmax_scores,
    top1_accuracy,
    video_labels,
    video_scores,
)
from im2flow_core.unet import GeneratorConfig, UNetGenerator


def test_fusion_is_the_weighted_average_of_class_scores():
    appearance = np.array([[0.7, 0.3], [0.2, 0.8]])
    motion = np.array([[0.1, 0.9], [0.6, 0.4]])
    np.testing.assert_allclose(fuse(appearance, motion, 0.25), [[0.55, 0.45], [0.3, 0.7]])
    np.testing.assert_allclose(fuse(appearance, motion, 0.0), appearance)
    np.testing.assert_allclose(fuse(appearance, motion, 1.0), motion)
    with pytest.raises(ValueError, match="motion_weight"):
        fuse(appearance, motion, 1.5)
    with pytest.raises(ValueError, match="shape"):
        fuse(appearance, motion[:1], 0.5)


def test_accuracies_and_confusion_on_hand_made_scores():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 1, 2])
    assert top1_accuracy(scores, labels) == 0.75
    assert mean_class_accuracy(scores, labels) == pytest.approx((1 + 0.5 + 1) / 3)
    np.testing.assert_array_equal(confusion_matrix(scores, labels, 3), [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(softmax_scores(torch.tensor([[0.0, 0.0], [np.log(3), 0.0]])), [[0.5, 0.5], [0.75, 0.25]])


def test_video_scores_average_frames_of_each_video():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    ids = ["a", "b", "a", "b"]
    videos, per_video = video_scores(scores, ids)
    assert videos == ["a", "b"]
    np.testing.assert_allclose(per_video, [[0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_array_equal(video_labels(np.array([0, 1, 0, 1]), ids), [0, 1])
    with pytest.raises(ValueError, match="different labels"):
        video_labels(np.array([0, 1, 1, 1]), ids)


def test_the_fusion_weight_comes_from_validation_scores_only():
    # On validation the appearance stream is always right and motion always wrong: w must be small.
    labels = np.array([0, 1, 0, 1])
    val_app = np.array([[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.4, 0.6]])
    val_motion = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    w = select_fusion_weight(val_app, val_motion, labels)
    assert w < 0.5 and top1_accuracy(fuse(val_app, val_motion, w), labels) == 1.0
    # Swap the roles: now motion must dominate.
    w2 = select_fusion_weight(val_motion, val_app, labels)
    assert w2 > 0.5
    # Equal evidence: ties go to equal averaging.
    assert select_fusion_weight(val_app, val_app, labels) == 0.5
    with pytest.raises(ValueError, match="validation"):
        select_fusion_weight(val_app[:0], val_motion[:0], labels[:0])


def _validation_set(copies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-class validation scores where fusion is right on 94 % for motion weights 0.1–0.3 and on 92 % from
    0.35 up (88 samples both streams get right, 6 both get wrong, 4 only motion gets right, fused from w > 0.08,
    2 only appearance gets right, fused while w < 0.32), repeated `copies` times."""
    rows = ([(0.9, 0.9)] * 88 + [(0.1, 0.1)] * 6 + [(0.46, 0.96)] * 4 + [(0.66, 0.16)] * 2) * copies
    p_app, p_motion = (np.array([r[i] for r in rows]) for i in (0, 1))
    labels = np.zeros(len(rows), np.int64)  # class 0 is always the true one; column 0 holds its probability
    return np.stack([p_app, 1 - p_app], 1), np.stack([p_motion, 1 - p_motion], 1), labels


def test_the_fusion_weight_leaves_equal_averaging_only_for_a_gain_larger_than_validation_noise():
    val_app, val_motion, labels = _validation_set(1)
    accuracies = {w: top1_accuracy(fuse(val_app, val_motion, w), labels) for w in (0.05, 0.2, 0.5)}
    assert accuracies == {0.05: 0.90, 0.2: 0.94, 0.5: 0.92}
    # 100 samples: 0.94 vs 0.92 is within one standard error (0.024), so equal averaging stays.
    assert select_fusion_weight(val_app, val_motion, labels) == 0.5
    # 2000 samples with the same accuracies: the standard error is 0.005, the gain is real, and of the best
    # weights (0.1–0.3) the one closest to equal averaging is chosen.
    assert select_fusion_weight(*_validation_set(20)) == 0.3


def test_motion_stream_trains_the_classifier_and_never_g():
    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=16))
    classifier = FlowClassifier(ClassifierConfig(num_classes=2, base_width=4, blocks=(1, 1, 1, 1), stem="small"))
    stream = MotionStream(generator, classifier).train()
    assert not generator.training and classifier.training  # G keeps its inference behaviour (dropout off)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in stream.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(stream(torch.rand(4, 3, 16, 16) * 2 - 1), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert all(p.grad is None for p in generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in classifier.parameters())
