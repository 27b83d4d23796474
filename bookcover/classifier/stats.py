"""Uncertainty beside every number: bootstrap intervals and a permutation test for Spearman's rho.

A test split of 250 covers measures MAE to about +-0.1, which is the size of the effects in
question (the study's 1.38 against 1.20 for always-middle). A verdict read off a point estimate
would be noise; these functions give the interval the verdict is read from instead.

bootstrap_mean_ci  percentile bootstrap of a mean, 2,000 resamples, seeded. Resampling n items
                   with replacement is a multinomial draw of how often each item is picked, so
                   items of equal value are pooled and the draw is multinomial over the distinct
                   values: the same distribution, at a cost that does not grow with n when the
                   values are few (absolute errors of levels are integers 0..K-1).
paired_diff_ci     the interval of mean(a - b) over the same resampled items (paired).
spearman_test      rho on average ranks, with a two-sided permutation p (10,000 permutations,
                   vectorised). Constant input has no rank order: rho is None (NaN in
                   the maths, null in JSON) and p is 1.0.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
PERMUTATIONS = 10_000
LEVEL = 0.95
SEED = 0
_CHUNK_ELEMENTS = 4_000_000  # bounds memory of the vectorised draws (rows x items)


def bootstrap_mean_ci(
    values: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL
) -> list[float] | None:
    """[low, high] percentile-bootstrap interval of mean(values); None for an empty set.

    Draws: ``counts = default_rng(seed).multinomial(n, freq, size=resamples)`` where freq are
    the frequencies of the sorted distinct values u (np.unique); resample b's mean is
    ``counts[b] @ u / n``. The bounds are np.percentile's (linear) at (1 -+ level) / 2.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    if n == 0:
        return None
    distinct, counts = np.unique(values, return_counts=True)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // distinct.size)
    means = []
    for start in range(0, resamples, rows):
        draws = rng.multinomial(n, counts / n, size=min(rows, resamples - start))
        means.append(draws @ distinct / n)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return [float(low), float(high)]


def mae_ci(pred: np.ndarray, labels: np.ndarray, **kwargs) -> list[float] | None:
    """Bootstrap interval of the MAE of integer level predictions."""
    return bootstrap_mean_ci(np.abs(np.asarray(pred, np.float64) - np.asarray(labels, np.float64)), **kwargs)


def paired_diff_ci(
    pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, **kwargs
) -> list[float] | None:
    """Interval of MAE(a) - MAE(b), both predictors scored on the same resampled covers."""
    labels = np.asarray(labels, np.float64)
    diff = np.abs(np.asarray(pred_a, np.float64) - labels) - np.abs(np.asarray(pred_b, np.float64) - labels)
    return bootstrap_mean_ci(diff, **kwargs)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given the average of the ranks they span (scipy.stats.rankdata 'average')."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]  # exclusive
    mean_rank = (starts + ends + 1) / 2.0  # average of start+1 .. end
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman_test(
    x: np.ndarray, y: np.ndarray, permutations: int = PERMUTATIONS, seed: int = SEED
) -> tuple[float | None, float]:
    """Spearman's rho of x against y and its two-sided permutation p-value.

    p = (1 + #{|rho_perm| >= |rho|}) / (1 + permutations), y's ranks shuffled against x's
    (the +1 counts the observed order itself, so p is never 0). With fewer than 3 items or a
    constant x or y, rho is undefined: returns (None, 1.0).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"x and y differ in length ({x.size} vs {y.size})")
    if x.size < 3:
        return None, 1.0
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    nx, ny = np.linalg.norm(rx), np.linalg.norm(ry)
    if nx == 0 or ny == 0:
        return None, 1.0
    rx, ry = rx / nx, ry / ny
    rho = float(np.clip(rx @ ry, -1.0, 1.0))
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // x.size)
    extreme = 0
    threshold = abs(rho) - 1e-12  # rounding must not hide a permutation that ties the observed order
    for start in range(0, permutations, rows):
        m = min(rows, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(ry, (m, ry.size)), axis=1)
        extreme += int((np.abs(shuffled @ rx) >= threshold).sum())
    return rho, (1 + extreme) / (1 + permutations)


def expected_level(probas: np.ndarray) -> np.ndarray:
    """The expected level sum_k P(level > k): the model's continuous score for rank statistics."""
    return np.asarray(probas, dtype=np.float64).sum(axis=1)
