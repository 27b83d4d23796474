"""Ordinal metrics with the trivial baselines beside them: a model must beat these to count."""

from __future__ import annotations

import numpy as np


def ordinal_metrics(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and accuracy of integer level predictions."""
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "accuracy": float("nan"), "n": 0}
    err = pred - labels
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "accuracy": float((err == 0).mean()),
        "n": int(labels.size),
    }


def prior_level(train_labels: np.ndarray, num_levels: int) -> int:
    """The constant that minimises MAE under the training levels' distribution: their median
    (the lowest level whose cumulative share reaches one half)."""
    ref = np.asarray(train_labels)
    if ref.size == 0:
        return num_levels // 2
    cumulative = np.cumsum(np.bincount(ref, minlength=num_levels)) / ref.size
    return int(np.flatnonzero(cumulative >= 0.5)[0])


def baselines(labels: np.ndarray, num_levels: int, train_labels: np.ndarray | None = None) -> dict[str, dict]:
    """Always-middle, always-majority and the training-set prior, scored on ``labels``.

    Middle and majority come from the evaluated set's own label histogram (the majority is
    that set's most common level: a constant that knows the histogram, so a hard bar on an
    unbalanced set); the prior is the median training level, the constant that minimises MAE
    under the training labels (without train_labels the evaluated labels stand in). Each
    entry carries its constant ``level`` beside its metrics.
    """
    labels = np.asarray(labels)
    ref = labels if train_labels is None else np.asarray(train_labels)
    middle = num_levels // 2
    majority = middle
    if labels.size:
        counts = np.bincount(labels, minlength=num_levels)
        tied = np.flatnonzero(counts == counts.max())
        majority = int(tied[np.abs(tied - middle).argmin()])  # ties (balanced levels) go to the middle
    constants = {"middle": middle, "majority": majority, "prior": prior_level(ref, num_levels)}
    return {name: {**ordinal_metrics(np.full(labels.shape, level), labels), "level": level}
            for name, level in constants.items()}


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_levels: int) -> np.ndarray:
    """Rows: true level, columns: predicted level."""
    cm = np.zeros((num_levels, num_levels), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, int), np.asarray(pred, int)), 1)
    return cm
