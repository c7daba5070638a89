"""The motion-potential head: G's pooled activations, the cross-validated ridge fit, plain-data storage."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from im2flow_core.flow_metrics import spearman
from im2flow_core.inference import predict_flow_and_features, predict_flow_images
from im2flow_core.potential_head import LOG_OFFSET_PX, PotentialHead, fit_potential_head, pooled_activations
from im2flow_core.unet import GeneratorConfig, UNetGenerator


def test_pooled_activations_cover_every_convolution_and_leave_the_output_unchanged():
    torch.manual_seed(0)
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32)).eval()
    batch = torch.rand(5, 3, 32, 32) * 2 - 1
    output, pooled = pooled_activations(generator, batch)
    channels = sum(m.out_channels for m in generator.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                                 torch.nn.ConvTranspose2d)))
    assert pooled.shape == (5, 2 * channels)
    assert torch.equal(output, generator(batch))
    assert not generator._forward_hooks and all(not m._forward_hooks for m in generator.modules())
    rgbs = [np.random.default_rng(i).integers(0, 255, (30 + i, 41, 3), dtype=np.uint8) for i in range(3)]
    flows, features = predict_flow_and_features(generator, rgbs, 32)
    assert [f.shape for f in features] == [(2 * channels,)] * 3
    for a, b in zip(flows, predict_flow_images(generator, rgbs, 32)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_head_learns_a_known_relation_and_chooses_its_ridge_by_group():
    rng = np.random.default_rng(0)
    n, f = 400, 40
    x = rng.normal(size=(n, f))
    truth = np.exp(x[:, :5].sum(1) * 0.3) * 0.5  # depends on five features only
    groups = [f"g{i // 4}" for i in range(n)]
    head = fit_potential_head(x, truth, groups, ridges=(1.0, 10.0, 1e4))
    assert head.ridge in (1.0, 10.0) and head.cv_spearman > 0.8  # 1e4 would shrink the relation away
    fresh = rng.normal(size=(60, f))
    fresh_truth = np.exp(fresh[:, :5].sum(1) * 0.3) * 0.5
    assert spearman(head.predict(fresh), fresh_truth) > 0.8
    assert (head.predict(fresh) > -LOG_OFFSET_PX).all()  # in px, like the truth
    with pytest.raises(ValueError, match="two video groups"):
        fit_potential_head(x[:8], truth[:8], ["g"] * 8)


def test_the_head_is_stored_as_plain_tensors():
    rng = np.random.default_rng(1)
    head = fit_potential_head(rng.normal(size=(20, 6)), rng.uniform(size=20), [f"g{i % 5}" for i in range(20)])
    buffer = io.BytesIO()
    torch.save({"potential_head": head.to_state()}, buffer)
    buffer.seek(0)
    again = PotentialHead.from_state(torch.load(buffer, weights_only=True)["potential_head"])
    probe = rng.normal(size=(3, 6))
    np.testing.assert_allclose(again.predict(probe), head.predict(probe))
    assert again.ridge == head.ridge
