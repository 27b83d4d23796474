"""What a hidden superpixel shows: lime's "fudged" image. No torch, so segmentation workers can build it."""

from __future__ import annotations

import numpy as np


def fill_image(image: np.ndarray, segments: np.ndarray, hide_color: float | None = None) -> np.ndarray:
    """lime's "fudged" image: each segment's mean colour (hide_color None) or a constant.

    Means are stored into uint8 as lime does (truncation toward zero), so fills are bit-equal.
    """
    fudged = image.copy()
    if hide_color is not None:
        fudged[:] = hide_color
        return fudged
    n = int(segments.max()) + 1
    flat = segments.ravel()
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    for c in range(3):
        sums = np.bincount(flat, weights=image[..., c].ravel().astype(np.float64), minlength=n)
        means = sums / np.maximum(counts, 1.0)  # exact integer sums, one division: as np.mean
        fudged[..., c] = means.astype(np.uint8)[segments]
    return fudged
