"""The torch ridge against sklearn's Ridge(alpha=1) with sample weights, and lime's kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances

from bookcover.explain.surrogate import cosine_distances, fit_surrogate, kernel_weights, weighted_ridge


def test_cosine_distance_matches_sklearn_including_all_zero_rows():
    data = np.random.default_rng(0).integers(0, 2, (200, 9))
    data[0] = 1
    data[5] = 0
    ref = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    np.testing.assert_allclose(cosine_distances(torch.from_numpy(data)).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("n_features", [3, 40])
def test_weighted_ridge_matches_sklearn(n_features):
    rng = np.random.default_rng(n_features)
    data = rng.integers(0, 2, (500, n_features))
    data[0] = 1
    y = data @ rng.normal(size=n_features) * 0.1 + rng.normal(size=500) * 0.05
    w = kernel_weights(cosine_distances(torch.from_numpy(data))).numpy()
    ref = Ridge(alpha=1, fit_intercept=True).fit(data, y, sample_weight=w)
    fit = fit_surrogate(torch.from_numpy(data), torch.from_numpy(y))
    np.testing.assert_allclose(fit.coef.numpy(), ref.coef_, rtol=0, atol=1e-10)
    assert fit.intercept == pytest.approx(ref.intercept_, abs=1e-10)
    assert fit.r2 == pytest.approx(ref.score(data, y, sample_weight=w), abs=1e-10)
    assert fit.local_pred == pytest.approx(float(ref.predict(data[:1])[0]), abs=1e-10)


def test_constant_target_gives_zero_weights_and_perfect_r2():
    data = torch.from_numpy(np.random.default_rng(2).integers(0, 2, (50, 4)))
    fit = weighted_ridge(data, torch.full((50,), 0.7), torch.ones(50))
    assert torch.allclose(fit.coef, torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert fit.intercept == pytest.approx(0.7) and fit.r2 == 1.0
