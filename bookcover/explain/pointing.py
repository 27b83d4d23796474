"""The pointing game on synthetic covers: does the top superpixel land on the planted badge?

Two scores, each beside its chance level, so that coarse superpixels cannot flatter them:

* **hit rate**: the most positive superpixel counts as a hit only when most of it (at least
  HIT_INSIDE of its pixels) lies inside the badge box. A superpixel that merely contains the
  badge, e.g. the lower half of the cover, is no hit. Chance: the share of superpixels that
  would count as a hit (one picked at random).
* **energy**: the share of the positive attribution mass that falls inside the box, each pixel
  carrying its superpixel's weight (negative weights count as 0), over the pixels the model
  sees (its center crop). Chance: the box's share of those pixels (a flat attribution).

Synthetic covers (bookcover.data.synth) save each planted element's box in 128x192 cover
pixels; the model sees the cover resized to a square, so boxes are scaled the same way. A
cover counts when it has a badge and is predicted at a high level (the top two levels): the
explanation should then point at the badge, which weighs most in the hidden score. The game
only means something if the model actually uses the badge, so :func:`badge_removal` first
re-renders the same cover without its badge (same random draws, since the badge is drawn last)
and measures how the prediction changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookcover.data.synth import COVER_HEIGHT, COVER_WIDTH
from bookcover.explain.adapters import ExplainModel, predict_pixels
from bookcover.explain.planted import PlantedCover, badge_pair, planted_cover, render_without_badge

__all__ = ["BadgeRemoval", "PlantedCover", "Pointing", "PointingRecord", "badge_pair", "badge_removal", "box_mask",
           "hits", "planted_cover", "point", "render_without_badge", "summarise"]

HIT_INSIDE = 0.5  # share of the top superpixel's pixels that must lie inside the badge box for a hit


def box_mask(box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) of model-input pixels whose centres fall in a cover-pixel box."""
    h, w = shape
    x0, y0, x1, y1 = box
    xs = (np.arange(w) + 0.5) * COVER_WIDTH / w
    ys = (np.arange(h) + 0.5) * COVER_HEIGHT / h
    return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]


def hits(segments: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Per segment id: does it count as pointing at the box? (at least HIT_INSIDE of it inside)"""
    n = int(segments.max()) + 1
    area = np.bincount(segments.ravel(), minlength=n)
    overlap = np.bincount(segments[box], minlength=n)
    return overlap / np.maximum(area, 1) >= HIT_INSIDE


@dataclass
class Pointing:
    """One explanation scored against one box."""

    hit: bool  # the most positive superpixel lies mostly inside the box
    chance: float  # share of superpixels that would count as a hit
    top_area_over_box: float  # the top superpixel's area / the box's area (in model-input pixels)
    energy: float  # share of the positive attribution mass inside the box (seen pixels only)
    energy_chance: float  # the box's share of the seen pixels


def point(segments: np.ndarray, weights: np.ndarray, box: np.ndarray, seen: np.ndarray | None = None) -> Pointing:
    """Score superpixels ``segments`` with ``weights`` against the boolean (H, W) ``box``;
    ``seen``: the pixels the model sees (default: all)."""
    seen = np.ones(segments.shape, bool) if seen is None else seen
    weights = np.asarray(weights, np.float64)
    on_box = hits(segments, box)
    top = int(np.argsort(-weights, kind="stable")[0])
    area = int((segments == top).sum())
    mass = np.maximum(weights, 0.0)[segments] * seen
    total = float(mass.sum())
    return Pointing(
        hit=bool(on_box[top] and weights[top] > 0),
        chance=float(np.mean(on_box)),
        top_area_over_box=area / max(int(box.sum()), 1),
        energy=float(mass[box].sum() / total) if total > 0 else 0.0,
        energy_chance=float((box & seen).sum() / max(int(seen.sum()), 1)),
    )


@dataclass
class BadgeRemoval:
    expected_before: float
    expected_after: float
    level_before: int
    level_after: int


def badge_removal(
    model: ExplainModel, path: str | Path, cover: PlantedCover, pair: np.ndarray | None = None
) -> BadgeRemoval:
    """The model's expected and predicted level with and without the cover's badge.

    ``pair``: :func:`badge_pair`'s result when it was already built (by a worker).
    """
    if pair is None:
        pair = badge_pair(path, cover, model.image_size)
    out = predict_pixels(model, torch.from_numpy(pair))
    probas = out["probas"].double().cpu()
    expected = probas.sum(1)
    level = (probas > 0.5).sum(1)
    return BadgeRemoval(float(expected[0]), float(expected[1]), int(level[0]), int(level[1]))


@dataclass
class PointingRecord:
    cover: str
    level: int
    pointing: Pointing
    removal: BadgeRemoval


def summarise(records: list[PointingRecord], num_levels: int) -> dict:
    """Badge-removal check over all badge covers, then the pointing game over high-level ones."""
    if not records:
        return {}
    drop = [r.removal.expected_before - r.removal.expected_after for r in records]
    lowered = sum(r.removal.level_after < r.removal.level_before for r in records)
    high = [r for r in records if r.level >= num_levels - 2]
    return {
        "badge_covers": len(records),
        "removal_mean_expected_drop": float(np.mean(drop)),
        "removal_level_lowered": int(lowered),
        "removal_matters": bool(lowered * 2 >= len(records) and np.mean(drop) > 0),
        "high_level_badge_covers": len(high),
        "pointing_hits": int(sum(r.pointing.hit for r in high)),
        "pointing_rate": _mean([r.pointing.hit for r in high]),
        "pointing_chance": _mean([r.pointing.chance for r in high]),
        "top_area_over_box_median": float(np.median([r.pointing.top_area_over_box for r in high])) if high else nan,
        "energy": _mean([r.pointing.energy for r in high]),
        "energy_chance": _mean([r.pointing.energy_chance for r in high]),
        "hit_inside": HIT_INSIDE,
    }


nan = float("nan")


def _mean(values: list) -> float:
    return float(np.mean(values)) if values else nan
