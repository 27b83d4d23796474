"""FID and KID on a trained CORAL classifier's penultimate features (no Inception download).

FID (Heusel et al., 2017) is the Frechet distance between Gaussians fitted to two feature
sets; KID (Binkowski et al., 2018) is the unbiased MMD^2 with the cubic polynomial kernel
(x.y / d + 1)^3, averaged over random subsets. With a cover-popularity ResNet instead of
Inception the numbers are only comparable within this project, next to their baselines.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bookcover.classifier import Classifier, embed_pixels


def to_classifier_pixels(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[-1, 1] (N, 3, h, w) -> uint8 (N, H, W, 3) at the classifier's cache size (bilinear)."""
    x = images.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@torch.no_grad()
def classifier_outputs(clf: Classifier, images: torch.Tensor, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """The classifier's view of [-1, 1] images: penultimate features (N, 512), CORAL logit,
    probas, rank and expected level, on the CPU.

    Real and generated images take exactly this path, so the classifier's own preprocessing
    (resize to its cache size, centre crop, ImageNet normalisation) treats both alike.
    """
    parts = [
        embed_pixels(clf, to_classifier_pixels(images[a : a + batch_size], clf.image_size), batch_size)
        for a in range(0, images.shape[0], batch_size)
    ]
    if not parts:
        return embed_pixels(clf, torch.zeros(0, *clf.image_size, 3, dtype=torch.uint8))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), via symmetric eigendecompositions."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(s_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD^2 with the kernel (x.y/d + 1)^3 over random subsets: (mean, std)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    # The cubic kernel assumes x.y/d of order 1 (true of Inception features). A CORAL ResNet's
    # features can be far larger, and then the real-real term's variance swamps everything, so
    # both sets are divided by one scale that makes x.x/d average 1 over the first set.
    scale = np.sqrt(max(float((a * a).sum(1).mean()) / d, 1e-12))
    a, b = a / scale, b / scale
    # Subsets at most half of the smaller set, so they differ from each other and the std means something.
    m = min(subset_size, a.shape[0] // 2, b.shape[0] // 2)
    if m < 2:
        raise ValueError("KID needs at least 4 samples per set")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        off = m * (m - 1)
        vals.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))
