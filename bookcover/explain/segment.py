"""Superpixels for LIME: the study's quickshift (or SLIC), labelled 0..n-1 as lime assumes."""

from __future__ import annotations

import inspect
from functools import cache

import numpy as np

# The study's (and lime's default) quickshift parameters.
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
SEGMENTERS = ("quickshift", "slic")


@cache
def _quickshift_takes_seed() -> bool:
    from skimage.segmentation import quickshift

    return "random_seed" in inspect.signature(quickshift).parameters


def segment(image: np.ndarray, method: str = "quickshift", random_seed: int = 0) -> np.ndarray:
    """Segment a uint8 (H, W, 3) image into superpixels with labels 0..n-1 (int64, (H, W)).

    ``random_seed`` is the seed lime draws from its RandomState for quickshift. lime's wrapper
    passes it only when quickshift has a ``random_seed`` argument (scikit-image < 0.25); newer
    versions renamed it ``rng`` and lime silently drops it, so quickshift uses its default. We
    do the same, so the segmentation matches lime's with whichever scikit-image is installed.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    # scikit-image is imported here, not at module level: a GPU box may time the device part without it.
    from skimage.segmentation import quickshift, slic

    if method == "quickshift":
        extra = {"random_seed": random_seed} if _quickshift_takes_seed() else {}
        labels = quickshift(image, **QUICKSHIFT, **extra)
    elif method == "slic":
        labels = slic(image, n_segments=50, compactness=10, start_label=0)
    else:
        raise ValueError(f"unknown segmenter {method!r}; choose one of {', '.join(SEGMENTERS)}")
    # Relabel densely so that segment ids are exactly 0..n-1 (lime indexes masks by id).
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int64)
