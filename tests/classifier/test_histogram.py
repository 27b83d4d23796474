"""The colour-histogram ridge baseline: features, closed-form fit, alpha on validation."""

import numpy as np

from bookcover.classifier.histogram import NUM_FEATURES, cover_features, fit_histogram_ridge


def _covers(levels: np.ndarray, rng) -> np.ndarray:
    """Covers whose red channel rises with the level: a colour signal a histogram can read."""
    images = rng.integers(0, 256, (levels.size, 24, 24, 3), dtype=np.int64)
    images[..., 0] = np.clip(levels[:, None, None] * 50 + rng.integers(0, 60, (levels.size, 24, 24)), 0, 255)
    return images.astype(np.uint8)


def test_features_are_finite_and_fixed_size():
    rng = np.random.default_rng(0)
    feats = cover_features(rng.integers(0, 256, (5, 20, 16, 3), dtype=np.uint8))
    assert feats.shape == (5, NUM_FEATURES) and np.isfinite(feats).all()
    assert np.allclose(feats[:, :64].sum(1), 1.0)  # the joint histogram holds fractions
    black = cover_features(np.zeros((1, 8, 8, 3), np.uint8))
    assert black[0, 0] == 1.0 and np.isfinite(black).all()  # all pixels in the darkest bin, no NaN from HSV


def test_ridge_reads_a_colour_signal_and_ignores_noise():
    rng = np.random.default_rng(1)
    y_train, y_val, y_test = (np.repeat(np.arange(5), k) for k in (40, 10, 10))
    train, val, test = (cover_features(_covers(y, rng)) for y in (y_train, y_val, y_test))
    model = fit_histogram_ridge(train, y_train, val, y_val, 5)
    levels, scores = model.predict(test)
    assert np.abs(levels - y_test).mean() < 0.6 < 1.2  # far better than always-middle (1.2)
    assert np.corrcoef(scores, y_test)[0, 1] > 0.8

    shuffled = rng.permutation(y_train)  # labels unrelated to the pixels
    noise = fit_histogram_ridge(train, shuffled, val, rng.permutation(y_val), 5)
    levels, _ = noise.predict(test)
    assert np.abs(levels - y_test).mean() >= 1.0  # no better than guessing
