"""The random on/off masks over superpixels, drawn exactly as lime 0.2.0.1 draws them.

lime seeds one numpy ``RandomState`` and uses it in this order: (1) ``randint(0, 1000)`` for the
segmentation seed, (2) ``randint(0, 2, num_samples * n_features)`` for the data matrix, whose
row 0 is then set to all ones (the unperturbed image). Reproducing that order is what makes our
masks, and therefore our perturbed images, bit-identical to lime's for the same seed.
"""

from __future__ import annotations

import numpy as np


def segmentation_seed(rs: np.random.RandomState) -> int:
    """lime's first draw: the seed it hands to quickshift."""
    return int(rs.randint(0, high=1000))


def draw_masks(rs: np.random.RandomState, num_samples: int, n_features: int) -> np.ndarray:
    """lime's second draw: (num_samples, n_features) int64 of 0/1, row 0 all ones."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    data = rs.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
    data[0, :] = 1
    return data
