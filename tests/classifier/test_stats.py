"""Bootstrap intervals and the Spearman permutation test, against hand computations and scipy."""

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bookcover.classifier.stats import (
    average_ranks,
    bootstrap_mean_ci,
    mae_ci,
    paired_diff_ci,
    spearman_test,
)


def test_bootstrap_reproduces_the_documented_draws_by_hand():
    values = np.array([4.0, 1.0, 2.0, 1.0])
    # The documented procedure: multinomial counts over the sorted distinct values [1, 2, 4]
    # with frequencies [2/4, 1/4, 1/4]; each resample's mean is counts @ values / n.
    counts = np.random.default_rng(3).multinomial(4, [0.5, 0.25, 0.25], size=5)
    means = sorted(float(c @ np.array([1.0, 2.0, 4.0]) / 4) for c in counts)
    # np.percentile's linear rule: position q/100 * (B - 1) between order statistics.
    def by_hand(q):
        pos = q / 100 * (len(means) - 1)
        lo = int(np.floor(pos))
        return means[lo] + (pos - lo) * (means[min(lo + 1, len(means) - 1)] - means[lo])

    assert bootstrap_mean_ci(values, resamples=5, seed=3) == pytest.approx([by_hand(2.5), by_hand(97.5)], abs=1e-12)


def test_bootstrap_matches_the_exact_enumeration_of_all_resamples():
    values = np.array([0.0, 1.0, 2.0, 5.0])
    n = values.size
    exact = np.sort([values[list(idx)].mean() for idx in itertools.product(range(n), repeat=n)])  # 256 resamples
    cdf = np.arange(1, exact.size + 1) / exact.size

    def quantile(p):
        q = exact[np.searchsorted(cdf, p)]
        below, upto = (exact < q).mean(), (exact <= q).mean()
        assert below < p - 0.005 and upto > p + 0.005  # far from an atom's edge: sampling noise cannot cross
        return q

    low, high = bootstrap_mean_ci(values, resamples=200_000, seed=1)
    assert low == pytest.approx(quantile(0.025), abs=1e-12)
    assert high == pytest.approx(quantile(0.975), abs=1e-12)


def test_intervals_are_seeded_and_contain_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    pred = np.clip(labels + rng.integers(-1, 2, 300), 0, 4)
    ci = mae_ci(pred, labels)
    assert ci == mae_ci(pred, labels)  # same seed, same interval
    assert ci[0] <= np.abs(pred - labels).mean() <= ci[1]
    assert bootstrap_mean_ci([]) is None


def test_paired_difference_is_the_interval_of_the_per_cover_difference():
    labels = np.array([0, 1, 2, 3, 4, 4, 0, 2])
    model = np.array([1, 1, 2, 2, 4, 3, 0, 2])
    middle = np.full(labels.shape, 2)
    diff = np.abs(model - labels) - np.abs(middle - labels)
    assert paired_diff_ci(model, middle, labels, seed=4) == bootstrap_mean_ci(diff, seed=4)
    assert paired_diff_ci(middle, middle, labels) == [0.0, 0.0]  # identical predictors: no difference at all


def test_spearman_rho_matches_scipy_with_ties():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 400)  # levels: heavy ties
    x = y + rng.normal(0, 4, 400)
    rho, p = spearman_test(x, y)
    expected = scipy_stats.spearmanr(x, y)
    assert rho == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, abs=0.02)  # permutation vs t approximation at n = 400
    np.testing.assert_allclose(average_ranks(y), scipy_stats.rankdata(y))


def test_spearman_hand_checkable_case():
    # n = 4, perfectly ordered: of the 24 orders only this one and its reverse reach |rho| = 1,
    # so the exact two-sided p is 2/24.
    rho, p = spearman_test([1, 2, 3, 4], [10, 20, 30, 40])
    assert rho == pytest.approx(1.0)
    assert p == pytest.approx(1 / 12, abs=0.01)
    rho, _ = spearman_test([1, 2, 3, 4], [4, 3, 2, 1])
    assert rho == pytest.approx(-1.0)


def test_constant_predictions_have_no_rank_order():
    assert spearman_test(np.full(10, 2.0), np.arange(10)) == (None, 1.0)
    assert spearman_test([1, 2], [2, 1]) == (None, 1.0)
