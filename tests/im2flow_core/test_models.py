import numpy as np
import pytest
import torch

from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier, load_state_dict_file
from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_core.inference import motion_potential, network_size, predict_flow_images
from im2flow_core.losses import Im2FlowLoss, LossConfig, content_loss, pixel_loss
from im2flow_core.paired_transforms import augment_pair, hflip_pair, resize_pair
from im2flow_core.unet import GeneratorConfig, UNetGenerator, flow_image_to_model_space


@pytest.mark.parametrize("depth,ngf,size", [(3, 8, (16, 24)), (5, 8, (64, 32)), (6, 16, (64, 64))])
def test_generator_shapes_and_ranges(depth, ngf, size):
    g = UNetGenerator(GeneratorConfig(depth=depth, ngf=ngf, input_size=64))
    out = g(torch.randn(2, 3, *size) * 3)
    assert out.shape == (2, 3, *size)
    assert out[:, :2].abs().max() <= 1.0 and out[:, 2].min() >= 0.0
    with pytest.raises(ValueError, match="multiples of"):
        g(torch.randn(1, 3, size[0] + 1, size[1]))


def test_paper_generator_has_the_released_size():
    g = UNetGenerator(GeneratorConfig())
    assert 54.0e6 < sum(p.numel() for p in g.parameters()) < 54.8e6  # pix2pix U-Net 256, ngf 64
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3


def test_to_flow_image_scales_magnitude():
    g = UNetGenerator(GeneratorConfig(depth=3, ngf=4, magnitude_scale_px=4.0, input_size=16))
    model_space = torch.tensor([0.6, 0.8, 0.5]).view(1, 3, 1, 1)
    np.testing.assert_allclose(g.to_flow_image(model_space).flatten().tolist(), [0.6, 0.8, 2.0])
    back = flow_image_to_model_space(g.to_flow_image(model_space), 4.0)
    torch.testing.assert_close(back, model_space)


@pytest.mark.parametrize("stem,size", [("small", 32), ("imagenet", 64)])
def test_classifier_shapes_and_features(stem, size):
    phi = FlowClassifier(ClassifierConfig(num_classes=5, base_width=8, blocks=(1, 1, 1, 1), stem=stem))
    x = torch.randn(3, 3, size, size)
    assert phi(x).shape == (3, 5)
    feats = phi.features(x, ("layer2", "stem"))
    assert set(feats) == {"layer2", "stem"} and feats["layer2"].shape[1] == 16
    with pytest.raises(ValueError):
        phi.features(x, ("layer9",))


def test_user_weights_load_with_weights_only(tmp_path):
    config = ClassifierConfig(num_classes=3, base_width=8, blocks=(1, 1, 1, 1), stem="small")
    a, b = FlowClassifier(config).eval(), FlowClassifier(config).eval()
    torch.save({"state_dict": a.state_dict()}, tmp_path / "phi.pt")
    load_state_dict_file(b, tmp_path / "phi.pt")
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(a(x), b(x))
    torch.save(FlowClassifier(config.model_copy(update={"num_classes": 4})).state_dict(), tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not fit"):
        load_state_dict_file(b, tmp_path / "bad.pt")


def test_pixel_loss_hand_computed():
    target = torch.zeros(1, 3, 1, 2)
    target[0, :, 0, 0] = torch.tensor([0.0, 1.0, 0.5])  # moving right at half scale
    target[0, :, 0, 1] = torch.tensor([0.0, 0.0, 0.0])  # still
    pred = torch.zeros(1, 3, 1, 2)
    pred[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.5])  # wrong direction, right magnitude
    pred[0, :, 0, 1] = torch.tensor([1.0, 0.0, 0.1])  # a direction where nothing moves, small magnitude
    # Unweighted: pixel 0: 1 + 1 + 0 = 2; pixel 1: 1 + 0 + 0.01 = 1.01; 6 elements: mean = 3.01 / 6.
    assert pixel_loss(pred, target, magnitude_weighting=False).item() == pytest.approx(3.01 / 6)
    # The released code's MSECriterion is the per-element mean: torch's mse_loss.
    assert pixel_loss(pred, target, magnitude_weighting=False).item() == pytest.approx(
        torch.nn.functional.mse_loss(pred, target).item())
    # Weighted by true magnitude: pixel 0: 0.5 · 2 = 1; pixel 1: 0 · 1 + 0.01; mean over 6 elements.
    assert pixel_loss(pred, target, magnitude_weighting=True).item() == pytest.approx(1.01 / 6)
    assert pixel_loss(target, target).item() == 0.0


def test_content_loss_and_lambda_zero():
    phi = FlowClassifier(ClassifierConfig(num_classes=2, base_width=4, blocks=(1, 1, 1, 1), stem="small"))
    y, y_hat = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert content_loss(phi.eval(), y, y, ("layer1", "layer2")).item() == 0.0
    l1 = content_loss(phi, y_hat, y, ("layer2",), "l1").item()
    phi_y, phi_yh = phi.features(y, ("layer2",))["layer2"], phi.features(y_hat, ("layer2",))["layer2"]
    assert l1 == pytest.approx((phi_y - phi_yh).abs().mean().item(), rel=1e-5)  # ‖·‖₁ / (D·H·W), batch-mean
    l2 = content_loss(phi, y_hat, y, ("layer2",), "l2").item()
    assert l2 == pytest.approx((phi_y - phi_yh).pow(2).mean().item(), rel=1e-5)
    pixel_only = Im2FlowLoss(LossConfig(content_weight=0.0, pixel_weight=50.0), None)(y_hat, y)
    assert pixel_only.total.item() == pytest.approx(50 * pixel_loss(y_hat, y).item(), rel=1e-6)
    assert pixel_only.content.item() == 0.0
    with pytest.raises(ValueError, match="needs the motion network"):
        Im2FlowLoss(LossConfig(content_weight=1.0), None)
    with pytest.raises(ValueError):
        LossConfig(content_layers=("nope",))


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    g = UNetGenerator(GeneratorConfig(depth=3, ngf=8, n_dropout=0, input_size=16))
    phi = FlowClassifier(ClassifierConfig(num_classes=2, base_width=4, blocks=(1, 1, 1, 1), stem="small"))
    loss = Im2FlowLoss(LossConfig(), phi)
    rgb = torch.rand(4, 3, 16, 16) * 2 - 1
    target = torch.cat([torch.zeros(4, 1, 16, 16), torch.ones(4, 1, 16, 16), torch.full((4, 1, 16, 16), 0.4)], 1)
    opt = torch.optim.Adam(g.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        terms = loss(g(rgb), target)
        first = first if first is not None else terms.total.item()
        opt.zero_grad()
        terms.total.backward()
        opt.step()
    assert terms.total.item() < 0.3 * first
    assert all(p.grad is None for p in phi.parameters())  # φ stays frozen


def test_flip_keeps_image_and_flow_consistent():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :2] = 255  # a bright block on the left ...
    flow = np.zeros((4, 6, 2), np.float32)
    flow[:, :2, 0] = 3.0  # ... moving right
    flow[:, :2, 1] = -1.0  # and up
    frgb, fflow = hflip_pair(rgb, flow)
    assert (frgb[:, 4:] == 255).all() and (frgb[:, :4] == 0).all()  # block now on the right ...
    assert (fflow[:, 4:, 0] == -3.0).all() and (fflow[:, 4:, 1] == -1.0).all()  # ... moving left, still up
    image, original = encode_flow(fflow), encode_flow(flow)
    np.testing.assert_allclose(image[:, 4:, 1], -original[:, :2, 1])  # cos θ changed sign ...
    np.testing.assert_allclose(image[:, 4:, 0], original[:, :2, 0])  # ... sin θ did not
    rng = np.random.default_rng(0)
    big_rgb, big_flow = np.zeros((16, 24, 3), np.uint8), np.zeros((16, 24, 2), np.float32)
    big_rgb[:, :12], big_flow[:, :12, 0] = 255, 3.0  # the left half moves right
    for _ in range(8):
        a_rgb, a_flow = augment_pair(big_rgb, big_flow, rng, load_size=16, crop_size=16)
        moving = np.abs(a_flow[..., 0]) > 2.0
        assert a_rgb.shape == (16, 16, 3) and moving.any()
        assert (a_rgb[moving].mean(axis=-1) > 200).mean() > 0.9  # the motion stays on the bright block
        bright_side = a_rgb[..., 0].mean(axis=0)
        moves_right = a_flow[moving, 0].mean() > 0
        assert moves_right == (bright_side[:8].mean() > bright_side[8:].mean())  # flipped: moves left


def test_resize_rescales_vectors():
    rgb = np.zeros((10, 20, 3), np.uint8)
    flow = np.tile(np.array([2.0, 1.0], np.float32), (10, 20, 1))
    _, small = resize_pair(rgb, flow, (10, 20))  # half width, double height
    np.testing.assert_allclose(small[5, 5], [1.0, 2.0], atol=1e-6)


def test_predict_any_size_and_motion_potential():
    g = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=16, magnitude_scale_px=2.0))
    assert network_size(33, 47, 16, 8) == (16, 24)
    rgb = np.random.default_rng(0).integers(0, 255, (33, 47, 3), dtype=np.uint8)
    (image,) = predict_flow_images(g, [rgb], 16)
    assert image.shape == (33, 47, 3) and image.dtype == np.float32
    assert motion_potential(image) == pytest.approx(float(np.hypot(*decode_flow(image).transpose(2, 0, 1)).mean()),
                                                    rel=1e-4)
    assert np.isnan(motion_potential(image, np.zeros((33, 47), bool)))



def test_l1_magnitude_penalty_is_the_absolute_error_of_m():
    target = torch.zeros(1, 3, 2, 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[:, 2] = torch.tensor([[0.5, -0.5], [0.0, 2.0]])
    assert pixel_loss(pred, target, magnitude_norm="l1").item() == pytest.approx((0.5 + 0.5 + 0 + 2.0) / 12)
    assert pixel_loss(pred, target, magnitude_norm="l2").item() == pytest.approx((0.25 + 0.25 + 0 + 4.0) / 12)
