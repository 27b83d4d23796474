"""A second trivial baseline that sees the pixels: ridge regression on colour statistics.

Always-middle ignores the cover; this baseline looks at it only through colour and texture
statistics a CNN can learn in its first layers. A CNN that cannot beat a colour histogram has
not learned covers.

Features per cover (the cached uint8 image, whole), 84 numbers:
  - a joint RGB histogram, 4 bins per channel (64 fractions),
  - per-channel mean and standard deviation (6),
  - HSV statistics: mean and std of saturation and value, the mean hue as (cos, sin) weighted
    by saturation, and the fraction of strongly saturated pixels (7),
  - edge density: mean gradient magnitude of the grey image and the fraction of pixels whose
    gradient exceeds 32 / 255 (2),
  - grey level: mean, std and the fractions of dark / mid / light pixels (5).

Model: features standardised on the training split, then closed-form ridge
w = (X'X + alpha I)^-1 X'(y - mean y) in numpy; alpha chosen on the validation split (lowest
MAE of the rounded predictions, ties to the larger alpha). Level predictions are the
continuous prediction rounded and clipped to 0..K-1; the continuous prediction is the score for
Spearman's rho.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
BINS = 4
EDGE_THRESHOLD = 32 / 255
_CHUNK = 256


def _rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1), saturation and value in [0, 1] for float RGB in [0, 1], shape (..., 3)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    c = v - rgb.min(-1)
    s = np.where(v > 0, c / np.where(v > 0, v, 1), 0.0)
    safe = np.where(c > 0, c, 1)
    h = np.where(v == r, ((g - b) / safe) % 6, np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = np.where(c > 0, h / 6.0, 0.0)
    return h, s, v


NUM_FEATURES = BINS**3 + 6 + 7 + 2 + 5


def cover_features(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 covers -> (N, NUM_FEATURES) float64 colour, HSV and edge statistics."""
    images = np.asarray(images)
    out = np.empty((images.shape[0], NUM_FEATURES), dtype=np.float64)
    for a in range(0, images.shape[0], _CHUNK):
        out[a : a + _CHUNK] = _features_chunk(images[a : a + _CHUNK])
    return out


def _features_chunk(u8: np.ndarray) -> np.ndarray:
    n = u8.shape[0]
    pixels = u8.reshape(n, -1, 3)
    q = (pixels // (256 // BINS)).astype(np.int64)
    code = q[..., 0] * BINS * BINS + q[..., 1] * BINS + q[..., 2]
    joint = np.stack([np.bincount(c, minlength=BINS**3) for c in code]) / code.shape[1]
    x = pixels.astype(np.float32) / 255.0
    mean, std = x.mean(1), x.std(1)
    h, s, v = _rgb_to_hsv(x)
    angle = 2 * np.pi * h
    weight = s.sum(1) + 1e-6
    hsv = np.stack([s.mean(1), s.std(1), v.mean(1), v.std(1), (np.cos(angle) * s).sum(1) / weight,
                    (np.sin(angle) * s).sum(1) / weight, (s > 0.5).mean(1)], axis=1)
    grey = (u8.astype(np.float32) / 255.0) @ np.array([0.299, 0.587, 0.114], np.float32)  # (n, H, W)
    gy = np.abs(np.diff(grey, axis=1))[:, :, :-1]
    gx = np.abs(np.diff(grey, axis=2))[:, :-1, :]
    grad = np.sqrt(gx**2 + gy**2).reshape(n, -1)
    flat = grey.reshape(n, -1)
    tones = np.stack([(flat < 1 / 3).mean(1), ((flat >= 1 / 3) & (flat < 2 / 3)).mean(1), (flat >= 2 / 3).mean(1)], 1)
    edges = np.stack([grad.mean(1), (grad > EDGE_THRESHOLD).mean(1)], axis=1)
    grey_stats = np.concatenate([flat.mean(1, keepdims=True), flat.std(1, keepdims=True), tones], axis=1)
    return np.concatenate([joint, mean, std, hsv, edges, grey_stats], axis=1)


class FeatureMemo:
    """Features of every cover of a cache, computed once: a run's splits (and a study's seeds,
    which re-split the same covers) index into them instead of recomputing."""

    def __init__(self) -> None:
        self._by_cache: dict[str, np.ndarray] = {}

    def of(self, covers, positions: np.ndarray) -> np.ndarray:
        """Features of covers (a LabelledCovers) at the given positions."""
        key = str(covers.cache.directory)
        if key not in self._by_cache:
            self._by_cache[key] = cover_features(covers.cache.images)
        return self._by_cache[key][covers.rows[positions]]


@dataclass
class HistogramRidge:
    """A fitted ridge model on cover_features; predict() gives levels and continuous scores."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    alpha: float
    num_levels: int

    def score(self, features: np.ndarray) -> np.ndarray:
        """The continuous predicted level (for rank statistics)."""
        return ((features - self.mean) / self.scale) @ self.weights + self.intercept

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(levels, scores): scores rounded and clipped to 0..K-1, and the scores themselves."""
        scores = self.score(features)
        return np.clip(np.rint(scores), 0, self.num_levels - 1).astype(np.int64), scores


def _solve(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def fit_histogram_ridge(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, num_levels: int,
    alphas: tuple[float, ...] = ALPHAS,
) -> HistogramRidge:
    """Ridge on standardised features, alpha picked by validation MAE (no validation: the median alpha)."""
    train_y = np.asarray(train_y, np.float64)
    mean = train_x.mean(0)
    scale = train_x.std(0)
    scale[scale < 1e-12] = 1.0  # constant features contribute nothing
    xs = (train_x - mean) / scale
    intercept = float(train_y.mean()) if train_y.size else (num_levels - 1) / 2
    yc = train_y - intercept
    best: tuple[float, float] | None = None
    chosen = alphas[len(alphas) // 2]
    if val_y is not None and np.asarray(val_y).size:
        xv = (val_x - mean) / scale
        for alpha in alphas:  # ascending: a later (larger) alpha wins ties
            pred = np.clip(np.rint(xv @ _solve(xs, yc, alpha) + intercept), 0, num_levels - 1)
            mae = float(np.abs(pred - val_y).mean())
            if best is None or mae <= best[0]:
                best, chosen = (mae, alpha), alpha
    return HistogramRidge(mean, scale, _solve(xs, yc, chosen), intercept, chosen, num_levels)
