"""Popularity scores -> K equal-size ordinal levels -> a stratified train/val/test split."""

from __future__ import annotations

import numpy as np

from bookcover.errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
UNUSED = 3  # a train cover set aside (LabelledCovers.keep_train_fraction): in no split
SPLIT_NAMES = {"train": TRAIN, "val": VAL, "test": TEST}


def assign_levels(
    scores: np.ndarray, num_levels: int = 5, drop_remainder: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rank by score (descending, stable) and cut the ranking into num_levels equal parts.

    Returns (keep, labels): indices into scores that were kept, and their level, where level
    num_levels-1 is the most popular. With drop_remainder the least popular len % num_levels
    items are dropped so that every level has the same size, as the study did.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.size
    if num_levels < 2:
        raise DataError(f"need at least 2 levels, got {num_levels}")
    if n < num_levels:
        raise DataError(f"need at least {num_levels} readable covers for {num_levels} levels, got {n}")
    order = np.argsort(-scores, kind="stable")  # most popular first, ties keep list order
    if drop_remainder:
        order = order[: n - n % num_levels]
    m = order.size
    position = np.arange(m)
    labels = (num_levels - 1) - (position * num_levels) // m
    keep_sorted = np.argsort(order, kind="stable")
    return order[keep_sorted], labels[keep_sorted].astype(np.int64)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> np.ndarray:
    """Assign each item to train (0), val (1) or test (2), level by level, reproducibly."""
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    labels = np.asarray(labels)
    split = np.empty(labels.size, dtype=np.int8)
    rng = np.random.default_rng(seed)
    for level in np.unique(labels):
        idx = np.flatnonzero(labels == level)
        idx = idx[rng.permutation(idx.size)]
        n_train = int(round(fr[0] * idx.size))
        n_val = int(round(fr[1] * idx.size))
        split[idx[:n_train]] = TRAIN
        split[idx[n_train : n_train + n_val]] = VAL
        split[idx[n_train + n_val :]] = TEST
    return split
