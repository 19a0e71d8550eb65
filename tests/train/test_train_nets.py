"""Networks (sizes from the papers, shapes, padding), losses, EMA and the LR schedule."""
from __future__ import annotations

import math

import pytest
import torch

from pairforge.train.config import NAFNetConfig, PerceptualLossConfig, PixelLossConfig, RRDBNetConfig
from pairforge.train.ema import EMA
from pairforge.train.losses import (
    PerceptualLoss,
    PixelLoss,
    VGGFeatures,
    build_lpips,
    gan_loss,
    lpips_missing,
    vgg19_layer_names,
)
from pairforge.train.nets import NAFNet, RRDBNet, UNetDiscriminatorSN, build_generator
from pairforge.train.optim import warmup_cosine
from pairforge.train.weights import MissingWeightsError


def n_params(m: torch.nn.Module) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


def test_default_sizes_match_the_papers():
    # NAFNet width 32 (SIDD): 29.1M; Real-ESRGAN x4plus RRDBNet: 16.7M; its U-Net discriminator: 4.4M
    assert n_params(build_generator(NAFNetConfig())) == pytest.approx(29.16, abs=0.05)
    assert n_params(build_generator(RRDBNetConfig())) == pytest.approx(16.70, abs=0.05)
    assert n_params(UNetDiscriminatorSN()) == pytest.approx(4.38, abs=0.05)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_scales_and_odd_sizes(scale):
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    y = net(torch.rand(2, 3, 13, 18))
    assert y.shape == (2, 3, 13 * scale, 18 * scale)


def test_rrdbnet_bicubic_residual_starts_at_bicubic():
    net = RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4, residual="bicubic")
    x = torch.rand(1, 3, 16, 16)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(net(x), ref)


def test_rrdbnet_detail_sigma_cannot_shift_tone():
    # the quickstart model's option: a flat correction (a tone or colour shift) is filtered out entirely,
    # a fine one passes; the filter is not a weight, so checkpoints keep the plain RRDBNet keys
    cfg = RRDBNetConfig(scale=4, num_feat=8, num_block=1, num_grow_ch=4, residual="bicubic", detail_sigma=4.0)
    net = build_generator(cfg)
    plain = build_generator(cfg.model_copy(update={"detail_sigma": None}))
    assert net.state_dict().keys() == plain.state_dict().keys()
    x = torch.rand(1, 3, 12, 10)
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        net.conv_last.bias.copy_(torch.tensor([0.2, -0.1, 0.05]))
        plain.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(x), ref, atol=1e-5, rtol=0)
    assert (plain(x) - ref).mean().item() == pytest.approx(0.05, abs=1e-5)  # the mean of the three shifts
    with torch.no_grad():
        net.conv_last.bias.zero_()
        net.conv_last.weight.normal_(0, 0.1)
    assert (net(x) - ref).abs().mean() > 1e-3
    with pytest.raises(ValueError, match="residual: bicubic"):
        RRDBNetConfig(detail_sigma=4.0)


def test_nafnet_pads_any_size_and_is_a_residual_net():
    net = NAFNet(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
    x = torch.rand(1, 3, 21, 30)
    y = net(x)
    assert y.shape == x.shape
    # the blocks start as identities (beta = gamma = 0): output = input + ending(intro(input))
    with torch.no_grad():
        net.ending.weight.zero_()
        net.ending.bias.zero_()
    torch.testing.assert_close(net(x), x)


def test_discriminator_is_spectrally_normalised():
    d = UNetDiscriminatorSN(num_feat=8)
    assert d(torch.rand(2, 3, 32, 32)).shape == (2, 1, 32, 32)
    sn = [n for n, _ in d.named_modules() if n.endswith("parametrizations.weight")]
    assert len(sn) == 8  # every conv but the first and the last
    with pytest.raises(ValueError, match="divisible by 8"):
        d(torch.rand(1, 3, 20, 20))


def test_pixel_losses():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert float(PixelLoss(PixelLossConfig(kind="l1"))(a, b)) == pytest.approx(0.5)
    assert float(PixelLoss(PixelLossConfig(kind="charbonnier", eps=1e-3))(a, b)) == pytest.approx(math.sqrt(0.25 + 1e-6))
    logits = torch.tensor([10.0, -10.0])
    assert float(gan_loss(logits[:1], True)) < 1e-3 and float(gan_loss(logits[1:], False)) < 1e-3


def test_vgg_perceptual_loss_loads_local_weights(vgg_file):
    path, feats = vgg_file
    cfg = PerceptualLossConfig(layers={"conv1_2": 0.5, "conv2_2": 1.0}, weights_path=str(path))
    loss = PerceptualLoss(cfg)
    assert torch.equal(loss.net.features[0].weight, feats[0].weight)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    assert float(loss(x, x.detach()).detach()) == 0.0
    value = loss(x, torch.rand(2, 3, 32, 32))
    value.backward()
    assert value > 0 and x.grad is not None and not any(p.requires_grad for p in loss.net.parameters())
    # pre-activation features are kept (no in-place ReLU clobbering them)
    out = VGGFeatures(["conv1_2"], str(path))(torch.rand(1, 3, 8, 8))
    assert (out["conv1_2"] < 0).any()
    assert vgg19_layer_names()[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]


def test_missing_pretrained_weights_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: nothing may be downloaded
    with pytest.raises(MissingWeightsError, match=r"vgg19-dcbb9e9d\.pth .*pairforge models pull"):
        PerceptualLoss(PerceptualLossConfig())
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        PerceptualLoss(PerceptualLossConfig(layers={"conv9_9": 1.0}, weights_path=str(tmp_path / "x")))
    missing = lpips_missing()
    assert len(missing) == 2 and all(str(tmp_path) in str(p) for p in missing)
    with pytest.raises(MissingWeightsError, match="LPIPS weights for LPIPS not found: .*pairforge models pull"):
        build_lpips()
    assert not list(tmp_path.rglob("*.pth"))


def test_ema_tracks_weights():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.9, start_step=1)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net, step=0)  # before start_step: a copy
    assert torch.equal(ema.module.weight, net.weight)
    with torch.no_grad():
        net.weight.fill_(2.0)
    ema.update(net, step=1)
    torch.testing.assert_close(ema.module.weight, torch.full((2, 2), 1.1))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.1)
