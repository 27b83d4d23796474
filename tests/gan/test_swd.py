"""SWD on Laplacian-pyramid patches: the pyramid inverts, and real-vs-real beats real-vs-noise."""

import numpy as np
import torch

from bookcover.data.dataset import prepare_dataset
from bookcover.gan.data import eval_crops
from bookcover.gan.swd import laplacian_pyramid, pyr_up, swd


def test_pyramid_levels_and_reconstruction():
    x = torch.rand(2, 3, 64, 64)
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + pyr_up(rebuilt)
    assert torch.allclose(rebuilt, x, atol=1e-5)


def test_identical_sets_have_zero_distance():
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    res = swd(x, x.clone(), per_image=16)
    assert set(res) == {"64", "32", "16", "mean"}
    assert res["mean"] < 1e-6


def test_real_vs_real_is_closer_than_real_vs_noise(synth_covers):
    ds = prepare_dataset(synth_covers, size=(120, 80), quiet=True)
    real = eval_crops(ds.images(np.arange(len(ds))), 64)
    perm = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(0))
    a, b = real[perm[:64]], real[perm[64:128]]
    noise = torch.rand_like(a) * 2 - 1
    rr = swd(b, a, per_image=32)
    rn = swd(noise, a, per_image=32)
    assert rr["mean"] < rn["mean"] / 2
    for level in ("64", "32", "16"):
        assert rr[level] < rn[level]
