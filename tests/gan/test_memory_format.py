"""The GAN on one memory format (channels_last), and compile failures falling back to eager."""

import json

import pytest
import torch

from bookcover.checkpoint import GAN_KIND, load_checkpoint
from bookcover.gan.data import load_gan_covers, train_crops
from bookcover.gan.model import build_gan
from bookcover.gan.train import channels_last, d_step, g_step, gan_step, train_gan
from tests.gan.test_train import tiny_gan

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _pair(memory_format, ngf=8):
    torch.manual_seed(0)
    g, d = build_gan(ngf=ngf, ndf=ngf)
    g, d = g.to(memory_format=memory_format), d.to(memory_format=memory_format)
    opts = [torch.optim.Adam(m.parameters(), lr=5e-4, betas=(0.5, 0.999)) for m in (g, d)]
    return g, d, opts


def _real_and_z(synth_covers):
    covers = load_gan_covers(tiny_gan(synth_covers), quiet=True)
    real = train_crops(torch.from_numpy(covers.pixels[:16]), 64, torch.Generator().manual_seed(0))
    return real, torch.randn(16, 100, 1, 1, generator=torch.Generator().manual_seed(1))


def _as(fmt, x):
    return channels_last(x) if fmt == torch.channels_last else x.contiguous()


def test_channels_last_g_and_d_match_contiguous_outputs_and_gradients(synth_covers):
    """G(z), D's and G's losses and every gradient of both, channels_last against contiguous."""
    real, z = _real_and_z(synth_covers)
    results = {}
    for fmt in (torch.contiguous_format, torch.channels_last):
        g, d, _ = _pair(fmt)
        fake = g(z)
        loss_d, d_x, d_g_z = d_step(d, _as(fmt, real), _as(fmt, fake).detach())
        loss_d.backward()
        d_grads = [p.grad.clone() for p in d.parameters()]
        d.zero_grad()
        loss_g, _ = g_step(d, _as(fmt, fake))
        loss_g.backward()
        results[fmt] = (fake, (loss_d, d_x, d_g_z, loss_g), d_grads, [p.grad for p in g.parameters()])
    (fake_a, out_a, dg_a, gg_a), (fake_b, out_b, dg_b, gg_b) = results.values()
    assert fake_b.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fake_b, fake_a, atol=1e-5, rtol=1e-5)
    for a, b in zip(out_a, out_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for a, b in zip(dg_a + gg_a, dg_b + gg_b, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5 * max(1.0, a.abs().max().item()), rtol=1e-4)


def test_one_default_training_step_in_channels_last(synth_covers):
    """gan_step, the loop's step, with channels_last G, D, crops and fakes: D's half of the step
    matches the contiguous one; G's half runs through the updated D (whose first Adam step moves
    each weight by +-lr, so rounding-level gradients near 0 may flip): finite and close."""
    real, z = _real_and_z(synth_covers)
    stats = {}
    for fmt in (torch.contiguous_format, torch.channels_last):
        g, d, (opt_g, opt_d) = _pair(fmt)
        stats[fmt] = gan_step(g, d, opt_g, opt_d, _as(fmt, real), z)
    (ld_a, lg_a, dx_a, dz1_a, dz2_a), (ld_b, lg_b, dx_b, dz1_b, dz2_b) = stats.values()
    for a, b in ((ld_a, ld_b), (dx_a, dx_b), (dz1_a, dz1_b)):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lg_b, lg_a, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(dz2_b, dz2_a, atol=1e-2, rtol=1e-2)


class FailingCompile:
    """Stands in for torch.compile: D's third call (G's step, after D already took its Adam
    step) raises the assertion inductor raised on CUDA."""

    def __init__(self):
        self.calls = 0

    def __call__(self, module, **kwargs):
        if module.__class__.__name__ != "Discriminator":
            return module

        def run(*args):
            self.calls += 1
            if self.calls == 3:
                raise AssertionError("expected size 512==512, stride 16==1 at dim=1\nError in op: convolution_backward")
            return module(*args)

        return run


def test_a_compile_failure_at_the_first_step_falls_back_to_eager_with_one_line(synth_covers, tmp_path, monkeypatch,
                                                                               capfd):
    cfg = tiny_gan(synth_covers, epochs=1, max_covers=60)
    train_gan(cfg, tmp_path / "eager", quiet=True, evaluate=False)
    capfd.readouterr()
    failing = FailingCompile()
    monkeypatch.setattr(torch, "compile", failing)
    train_gan(tiny_gan(synth_covers, epochs=1, max_covers=60, compile="on"), tmp_path / "fallback", quiet=True,
              evaluate=False)
    err = capfd.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines == ["warning: torch.compile failed at the first GAN step (AssertionError: expected size 512==512, "
                     "stride 16==1 at dim=1); continuing in eager mode"]
    assert failing.calls == 3, "after the failure, training stays eager"
    # The failed step was undone (D had already stepped) and redone: the run equals an eager one.
    a = load_checkpoint(tmp_path / "eager" / "last.pt", GAN_KIND)
    b = load_checkpoint(tmp_path / "fallback" / "last.pt", GAN_KIND)
    for part in ("generator", "discriminator"):
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, atol=0, rtol=0, msg=f"{part}.{key}")


@pytest.mark.cuda
@needs_cuda
def test_default_cuda_path_trains_compiled_without_falling_back(synth_covers, tmp_path, capfd):
    """One real run of the default CUDA path (torch.compile, bf16 autocast, channels_last) at the
    quick preset's shapes (Table 1 widths, batch 64), so the GPU check's `gan train` smoke run
    finds these graphs in inductor's cache."""
    cfg = tiny_gan(synth_covers, ngf=64, ndf=64, batch_size=64, max_covers=None, epochs=1, device="cuda")
    train_gan(cfg, tmp_path / "cuda", quiet=True, evaluate=False)
    err = capfd.readouterr().err
    assert "torch.compile failed" not in err, err
    records = [json.loads(x) for x in (tmp_path / "cuda" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    assert steps and all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all() for r in steps)


@pytest.mark.parametrize("conditional", [False, True])
def test_first_and_last_layers_as_products_equal_the_table_1_convolutions(conditional):
    """G's first ConvT (1 x 1 input) and D's last Conv (4 x 4 input, one channel) run as matrix
    products (no ambiguous-format convolution for torch.compile to mispredict); they must give
    what the convolutions of Table 1 give, with the same weights, outputs and gradients."""
    torch.manual_seed(0)
    levels = 5 if conditional else 0
    g, d = build_gan(ngf=8, ndf=8, num_classes=levels)
    g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    z = torch.randn(6, 100, 1, 1)
    y = torch.arange(6) % 5 if conditional else None
    fake = g(z, y)
    assert fake.is_contiguous(memory_format=torch.channels_last)
    zin = torch.cat([z, g.embed(y)[:, :, None, None]], 1) if conditional else z
    torch.testing.assert_close(fake, g.main(zin), atol=1e-6, rtol=1e-5)
    x = fake.detach()
    xin = torch.cat([x, d.embed(y).view(-1, 1, 64, 64)], 1) if conditional else x
    got, want = d(x, y), d.main(xin).view(-1)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    grads = []
    for out in (got, want):
        d.zero_grad()
        out.square().sum().backward(retain_graph=True)
        grads.append([p.grad.clone() for p in d.parameters()])
    for a, b in zip(*grads, strict=True):  # fp32 sums in another order: relative to the gradient's size
        torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, a.abs().max().item()), rtol=1e-4)
