"""Images embedded in Prefect artifacts stay under the server's event size limit."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from im2flow_core.figures import confusion_image
from im2flow_tasks.previews import ARTIFACT_IMAGE_BUDGET, png_data_uri


def _decode(uri: str) -> np.ndarray:
    png = base64.b64decode(uri.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_a_small_image_is_embedded_at_full_size():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
    decoded = _decode(png_data_uri(rgb))
    assert decoded.shape == (40, 60, 3)
    assert np.array_equal(decoded[..., ::-1], rgb)  # lossless


def test_a_101_class_confusion_matrix_is_shrunk_to_fit_the_budget():
    rng = np.random.default_rng(0)
    labels = [f"Action{i:03d}" for i in range(101)]
    matrix = rng.integers(0, 40, (101, 101))
    image = confusion_image(matrix, labels, "fused")
    full = cv2.imencode(".png", image)[1].size * 4 / 3
    assert full > ARTIFACT_IMAGE_BUDGET / 3  # the full-size one would not fit a third of the budget
    uri = png_data_uri(image, ARTIFACT_IMAGE_BUDGET // 3)
    assert len(uri) <= ARTIFACT_IMAGE_BUDGET // 3
    decoded = _decode(uri)
    assert decoded.shape[0] < image.shape[0] and decoded.shape[0] >= image.shape[0] // 16
    assert image.shape[0] >= 101 * 44  # the file is full size: every count legible
    # Prefect refuses events over 1.5 MB; three such images and the text stay well under it.
    assert 3 * len(uri) < 1_500_000
