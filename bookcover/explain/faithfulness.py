"""Is the explanation faithful to the model? Deletion and insertion curves over superpixels.

Deletion hides superpixels (replaces them with the fill) from the most positive weight down
and records the target after each step: a faithful ranking makes it fall fast (low AUC).
Insertion starts from the all-hidden cover and reveals in the same order: it should rise fast
(high AUC). Both are compared with random orders, the baseline any ranking must beat. Every
step of every curve is a mask row, so all curves go through the model in one chunked pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bookcover.explain.adapters import ExplainModel
from bookcover.explain.explainer import Explanation, predict_masks
from bookcover.explain.targets import target_values

RANDOM_ORDERS = 10


def curve_masks(order: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n+1, n) deletion and insertion masks: step j hides / shows the first j of ``order``."""
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    steps = np.arange(n + 1)[:, None]
    shown_first = rank[None, :] < steps  # step j: the first j segments of the order
    deletion = (~shown_first).astype(np.int64)
    insertion = shown_first.astype(np.int64)
    return deletion, insertion


def auc(values: np.ndarray) -> float:
    """Area under a curve sampled at fractions 0, 1/n, ..., 1 of the superpixels (trapezoid)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[0] < 2:
        return float(v.mean()) if v.size else 0.0
    return float(((v[1:] + v[:-1]) / 2).sum() / (v.shape[0] - 1))


@dataclass
class Faithfulness:
    deletion: list[float]
    insertion: list[float]
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float  # mean over RANDOM_ORDERS random orders
    random_insertion_auc: float

    def to_dict(self) -> dict:
        return {
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "random_deletion_auc": self.random_deletion_auc,
            "random_insertion_auc": self.random_insertion_auc,
            "deletion_curve": self.deletion,
            "insertion_curve": self.insertion,
        }


def faithfulness(
    model: ExplainModel, exp: Explanation, seed: int = 0, random_orders: int = RANDOM_ORDERS, batch: int | None = None
) -> Faithfulness:
    """Deletion/insertion curves of ``exp``'s ranking and of random orders, with their AUCs."""
    n = exp.n_segments
    rng = np.random.default_rng([seed, 5])
    orders = [exp.by_weight()] + [rng.permutation(n) for _ in range(random_orders)]
    blocks = [m for order in orders for m in curve_masks(order, n)]
    out = predict_masks(model, exp.image, exp.segments, exp.fill, np.concatenate(blocks), batch)
    y = target_values(out, exp.target, exp.task).cpu().numpy().reshape(len(blocks), n + 1)
    deletion, insertion = y[0], y[1]
    rand_del = [auc(y[i]) for i in range(2, len(blocks), 2)]
    rand_ins = [auc(y[i]) for i in range(3, len(blocks), 2)]
    return Faithfulness(
        deletion=[float(v) for v in deletion],
        insertion=[float(v) for v in insertion],
        deletion_auc=auc(deletion),
        insertion_auc=auc(insertion),
        random_deletion_auc=float(np.mean(rand_del)) if rand_del else float("nan"),
        random_insertion_auc=float(np.mean(rand_ins)) if rand_ins else float("nan"),
    )
