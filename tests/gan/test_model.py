"""The DCGAN models: Table 1's layers, output shapes, initialisation and seeding."""

import pytest
import torch
from torch import nn

from bookcover.gan.model import Discriminator, Generator, build_gan, layer_table


def test_table1_layer_lists():
    g, d = build_gan()
    assert layer_table(g) == [
        ("ConvT", 512, 4, 1, 0),
        ("ConvT", 256, 4, 2, 1),
        ("ConvT", 128, 4, 2, 1),
        ("ConvT", 64, 4, 2, 1),
        ("ConvT", 3, 4, 2, 1),
    ]
    assert [row[:2] for row in layer_table(d)] == [
        ("Conv", 64),
        ("Conv", 128),
        ("Conv", 256),
        ("Conv", 512),
        ("Conv", 1),
    ]
    g_kinds = [type(m) for m in g.main]
    assert g_kinds.count(nn.BatchNorm2d) == 4 and g_kinds.count(nn.ReLU) == 4 and g_kinds[-1] is nn.Tanh
    d_kinds = [type(m) for m in d.main]
    assert d_kinds.count(nn.BatchNorm2d) == 3, "BN on every D layer except the first (and the output)"
    assert d_kinds[1] is nn.LeakyReLU and d.main[1].negative_slope == 0.2
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules()), "D returns logits"
    assert g.main[0].in_channels == 100


def test_output_shapes_and_range():
    g, d = build_gan()
    g.eval()
    x = g(torch.randn(3, 100, 1, 1))
    assert x.shape == (3, 3, 64, 64)
    assert x.abs().max() <= 1.0
    assert d(x).shape == (3,)
    assert g(torch.randn(2, 100)).shape == (2, 3, 64, 64), "flat z is accepted too"


def test_conditional_shapes_and_missing_labels():
    g, d = Generator(ngf=8, num_classes=3), Discriminator(ndf=8, num_classes=3)
    y = torch.tensor([0, 2])
    x = g(torch.randn(2, 100, 1, 1), y)
    assert x.shape == (2, 3, 64, 64) and d(x, y).shape == (2,)
    assert g.main[0].in_channels == 150 and d.main[0].in_channels == 4
    with pytest.raises(ValueError, match="labels"):
        g(torch.randn(2, 100, 1, 1))


def test_initialisation_statistics():
    torch.manual_seed(0)
    g, d = build_gan()
    convs = [m.weight for m in list(g.modules()) + list(d.modules()) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([c.detach().flatten() for c in convs])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    bns = [m for m in list(g.modules()) + list(d.modules()) if isinstance(m, nn.BatchNorm2d)]
    bw = torch.cat([b.weight.detach() for b in bns])
    assert bw.mean().item() == pytest.approx(1.0, abs=0.005)
    assert bw.std().item() == pytest.approx(0.02, rel=0.15)
    assert all(torch.all(b.bias == 0) for b in bns)


def test_same_seed_same_models_and_samples():
    torch.manual_seed(7)
    g1, d1 = build_gan(ngf=8, ndf=8)
    torch.manual_seed(7)
    g2, d2 = build_gan(ngf=8, ndf=8)
    for a, b in zip(
        list(g1.state_dict().values()) + list(d1.state_dict().values()),
        list(g2.state_dict().values()) + list(d2.state_dict().values()),
        strict=True,
    ):
        assert torch.equal(a, b)
    torch.manual_seed(8)
    g3, _ = build_gan(ngf=8, ndf=8)
    assert not torch.equal(g1.main[0].weight, g3.main[0].weight)
