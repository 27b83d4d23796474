"""Diversity (mean pairwise distance) and memorisation (distance to the nearest training cover).

Both use RMS pixel distance on [-1, 1] images average-pooled to 32 px: pooling forgives the
few-pixel shifts of the random 64 px training crops, so a copied cover still lands close to
the centre crop it came from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COPY_FRACTION = 0.5  # flag a sample closer than this fraction of the real-to-real median distance
COPY_RATIO = 0.7  # ... and closer than this fraction of its distance to the second-nearest cover


def _flat(images: torch.Tensor, resolution: int) -> torch.Tensor:
    x = images.float()
    if x.shape[-1] != resolution:
        x = F.adaptive_avg_pool2d(x, resolution)
    return x.reshape(x.shape[0], -1)


def rms_cdist(a: torch.Tensor, b: torch.Tensor, resolution: int = 32) -> torch.Tensor:
    """(len(a), len(b)) RMS distances per pixel value."""
    fa, fb = _flat(a, resolution), _flat(b, resolution)
    return torch.cdist(fa.double(), fb.double()).float() / fa.shape[1] ** 0.5


def mean_pairwise_distance(images: torch.Tensor, resolution: int = 32) -> float:
    """Mean RMS distance over all distinct pairs: near 0 means every sample looks the same."""
    n = images.shape[0]
    if n < 2:
        return float("nan")
    d = rms_cdist(images, images, resolution)
    return float(d.sum() / (n * (n - 1)))


def nearest(queries: torch.Tensor, bank: torch.Tensor, resolution: int = 32, chunk: int = 512, k: int = 1):
    """Distances to, and indices of, the k nearest bank images for every query: (n, k) each."""
    dist, idx = [], []
    for a in range(0, queries.shape[0], chunk):
        d = rms_cdist(queries[a : a + chunk], bank, resolution)
        v, i = d.topk(min(k, bank.shape[0]), dim=1, largest=False)
        dist.append(v)
        idx.append(i)
    return torch.cat(dist), torch.cat(idx)


def memorisation(
    generated: torch.Tensor, train: torch.Tensor, real_a: torch.Tensor, real_b: torch.Tensor, resolution: int = 32
) -> dict:
    """Nearest-training distances of generated images beside those of real covers (half A to half B).

    A generated image is flagged as a likely copy when it is closer to a training cover than
    COPY_FRACTION times the median distance between a real cover and its nearest other cover,
    and that cover stands out (nearest < COPY_RATIO x second nearest). The second test keeps
    blurry "average" samples, close to many plain covers at once, from counting as copies.
    """
    gen_d, gen_i = nearest(generated, train, resolution, k=2)
    real_d, _ = nearest(real_a, real_b, resolution)
    real_median = float(real_d[:, 0].median())
    threshold = COPY_FRACTION * real_median
    close = gen_d[:, 0] < threshold
    distinct = gen_d[:, 0] < COPY_RATIO * gen_d[:, -1] if gen_d.shape[1] > 1 else torch.ones_like(close)
    flagged = torch.nonzero(close & distinct).flatten()
    return {
        "generated_median": float(gen_d[:, 0].median()),
        "generated_min": float(gen_d[:, 0].min()),
        "real_median": real_median,
        "threshold": threshold,
        "fraction": COPY_FRACTION,
        "ratio": COPY_RATIO,
        "close": int(close.sum()),
        "flagged": int(flagged.numel()),
        "flagged_indices": flagged.tolist()[:50],
        "resolution": resolution,
        "_distances": gen_d[:, 0],
        "_nearest": gen_i[:, 0],
    }
