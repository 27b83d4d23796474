"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al., ProGAN, 2018, App. D).

Written from the paper's description: each image becomes a Laplacian pyramid (5x5 binomial
filter, down to 16 px); from every level, 128 random 7x7 neighbourhoods per image give
descriptors of 7*7*3 values; each set's descriptors are normalised per colour channel (its
own mean and std); the distance between two sets is the Wasserstein-1 distance of their
projections on random unit directions (4 repeats x 128 directions), averaged. Small values
mean similar local statistics at that scale; ProGAN reports them x 1e3.

No pretrained network is involved, so it runs offline. Compare a generator only against the
real-vs-real baseline (two disjoint halves of the real covers) measured with the same code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSSIAN_5X5 = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    kernel = (GAUSSIAN_5X5.to(x) * gain).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second pixel: the next Gaussian-pyramid level."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels then blur with 4x gain: back to twice the size."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return _blur(up, 4.0)


def laplacian_pyramid(x: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down to min_size; the last is the low-pass residual."""
    levels = [x]
    while levels[-1].shape[-1] // 2 >= min_size:
        small = pyr_down(levels[-1])
        levels[-1] = levels[-1] - pyr_up(small)
        levels.append(small)
    return levels


def patch_descriptors(
    x: torch.Tensor, generator: torch.Generator, nhood: int = 7, per_image: int = 128
) -> torch.Tensor:
    """per_image random nhood x nhood patches of every image, as (N * per_image, C, nhood, nhood)."""
    b, c, h, w = x.shape
    top = torch.randint(0, h - nhood + 1, (b, per_image), generator=generator)
    left = torch.randint(0, w - nhood + 1, (b, per_image), generator=generator)
    steps = torch.arange(nhood)
    rows = (top[..., None] + steps)[..., :, None]  # (b, p, nhood, 1)
    cols = (left[..., None] + steps)[..., None, :]  # (b, p, 1, nhood)
    batch = torch.arange(b)[:, None, None, None]
    patches = x.permute(0, 2, 3, 1)[batch, rows, cols]  # (b, p, nhood, nhood, c)
    return patches.permute(0, 1, 4, 2, 3).reshape(b * per_image, c, nhood, nhood)


def normalise_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit std over the whole set, flattened to (M, C * nhood^2)."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, repeats: int = 4, directions: int = 128
) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance of the projections."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    results = []
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], directions, generator=generator, dtype=a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # numpy's sort along contiguous rows is many times faster than torch.sort on the CPU
        pa = np.sort((dirs.T @ a.T).numpy(), axis=1)
        pb = np.sort((dirs.T @ b.T).numpy(), axis=1)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


@torch.no_grad()
def swd(
    a: torch.Tensor, b: torch.Tensor, seed: int = 0, min_size: int = 16, per_image: int = 128, batch_size: int = 256
) -> dict[str, float]:
    """SWD x 1e3 per pyramid level (keyed by resolution) and their mean, between two image sets.

    a and b are float (N, 3, H, W) with the same N; the value range does not matter because
    every set is normalised per channel. The same seed gives the same patches and directions.
    """
    if a.shape != b.shape:
        raise ValueError(f"SWD needs two image sets of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    # Each set draws its patch positions from its own generator with the same seed, so two
    # identical sets give identical descriptors (distance exactly 0).
    descs: dict[int, list[list[torch.Tensor]]] = {}
    for s, images in enumerate((a, b)):
        gen = torch.Generator().manual_seed(seed)
        for i in range(0, images.shape[0], batch_size):
            for level in laplacian_pyramid(images[i : i + batch_size].float().cpu(), min_size):
                desc = patch_descriptors(level, gen, per_image=per_image)
                descs.setdefault(level.shape[-1], [[], []])[s].append(desc)
    gen = torch.Generator().manual_seed(seed + 1)
    out = {}
    for res, (da, db) in descs.items():
        out[str(res)] = 1e3 * sliced_wasserstein(
            normalise_descriptors(torch.cat(da)), normalise_descriptors(torch.cat(db)), gen
        )
    out["mean"] = sum(out.values()) / len(out)
    return out
