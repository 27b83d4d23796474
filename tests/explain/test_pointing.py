"""Pointing-game plumbing: planted boxes, scaling, hits, and re-rendering without the badge."""

from __future__ import annotations

import numpy as np
import pytest

from bookcover.data.images import load_cover
from bookcover.data.synth import synthesise
from bookcover.explain.pointing import (
    BadgeRemoval,
    Pointing,
    PointingRecord,
    box_mask,
    hits,
    planted_cover,
    point,
    render_without_badge,
    summarise,
)


@pytest.fixture(scope="module")
def covers(tmp_path_factory):
    return synthesise(tmp_path_factory.mktemp("pointing") / "covers", n=10, seed=4, quiet=True)


def test_planted_cover_found_only_for_synthetic_layout(covers, tmp_path):
    found = [planted_cover(covers / "images" / f"{r}.jpg") for r in range(10)]
    assert all(f is not None and f.root == covers.resolve() for f in found)
    assert any(f.badge_box for f in found) and any(f.badge_box is None for f in found)
    (tmp_path / "images").mkdir()
    assert planted_cover(tmp_path / "images" / "0.jpg") is None


def test_box_mask_scales_cover_pixels_to_the_square_input():
    mask = box_mask((0, 0, 64, 96), (72, 72))  # the cover's top-left quarter
    assert mask.sum() == 36 * 36 and mask[:36, :36].all()


def test_a_hit_needs_most_of_the_superpixel_inside_the_box():
    segments = np.zeros((8, 8), np.int64)
    segments[:, 4:] = 1
    segments[0, 0] = 2
    segments[1, 0:2] = 3
    box = np.zeros((8, 8), bool)
    box[:2, :2] = True
    # 0 holds most of the box but is mostly outside it; 2 and 3 lie inside it.
    assert hits(segments, box).tolist() == [False, False, True, True]


def test_a_superpixel_covering_half_the_cover_is_no_hit():
    """The quick preset's old failure: one superpixel is the whole lower half, badge included."""
    segments = np.zeros((72, 72), np.int64)
    segments[36:] = 1  # the lower half, where the badge sits
    segments[:36, 36:] = 2
    box = box_mask((93, 150, 124, 181), (72, 72))  # a synthetic cover's lower-right badge
    assert box.sum() > 0 and (segments[box] == 1).all()
    scored = point(segments, np.array([-0.01, 0.4, -0.2]), box)
    assert not scored.hit
    assert scored.top_area_over_box > 10
    assert scored.energy == pytest.approx(box.sum() / (36 * 72))  # the box's share of the superpixel
    assert scored.energy_chance == pytest.approx(box.sum() / 72**2)
    assert scored.chance == 0.0


def test_a_small_superpixel_on_the_badge_is_a_hit_and_energy_counts_seen_pixels():
    segments = np.zeros((72, 72), np.int64)
    box = box_mask((93, 150, 124, 181), (72, 72))
    segments[box] = 1
    seen = np.zeros((72, 72), bool)
    seen[4:68, 4:68] = True
    scored = point(segments, np.array([-0.3, 0.2]), box, seen)
    assert scored.hit and scored.top_area_over_box == 1.0 and scored.chance == 0.5
    assert scored.energy == 1.0  # all positive mass is on the badge
    assert scored.energy_chance == pytest.approx((box & seen).sum() / seen.sum())
    assert not point(segments, np.array([0.3, -0.2]), box).hit  # the top superpixel is the background
    assert not point(segments, np.array([-0.3, -0.2]), box).hit  # nothing positive: no hit


def test_rerendering_reproduces_the_cover_and_removes_only_the_badge(covers):
    row = next(r for r in range(10) if planted_cover(covers / "images" / f"{r}.jpg").badge_box)
    path = covers / "images" / f"{row}.jpg"
    cover = planted_cover(path)
    original = load_cover(path, (96, 64))
    assert np.array_equal(render_without_badge(cover, (96, 64), badge=True), original)
    without = render_without_badge(cover, (96, 64))
    changed = np.abs(without.astype(int) - original.astype(int)).max(axis=2) > 30
    inside = box_mask(cover.badge_box, (96, 64))
    assert changed[inside].mean() > 0.3 and changed[~inside].mean() < 0.02


def test_summary_checks_removal_before_the_game():
    def rec(level, hit, before, after):
        scored = Pointing(hit, 0.1, 1.0 if hit else 20.0, 0.6 if hit else 0.1, 0.05)
        return PointingRecord("c", level, scored, BadgeRemoval(before, after, level, int(after)))

    s = summarise([rec(4, True, 3.5, 2.2), rec(3, False, 3.2, 2.1), rec(1, True, 1.4, 1.3)], num_levels=5)
    assert s["badge_covers"] == 3 and s["removal_level_lowered"] == 2 and s["removal_matters"]
    assert s["high_level_badge_covers"] == 2 and s["pointing_hits"] == 1 and s["pointing_rate"] == 0.5
    assert s["pointing_chance"] == pytest.approx(0.1) and s["energy_chance"] == pytest.approx(0.05)
    assert s["energy"] == pytest.approx(0.35) and s["top_area_over_box_median"] == pytest.approx(10.5)
    assert summarise([], 5) == {}
