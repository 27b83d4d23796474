"""Pointing-game plumbing: planted boxes, scaling, hits, and re-rendering without the badge."""

from __future__ import annotations

import numpy as np
import pytest

from bookcover.data.images import load_cover
from bookcover.data.synth import synthesise
from bookcover.explain.pointing import (
    BadgeRemoval,
    PointingRecord,
    box_mask,
    hits,
    planted_cover,
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


def test_hits_use_overlap_with_the_smaller_area():
    segments = np.zeros((8, 8), np.int64)
    segments[:, 4:] = 1
    segments[0, 0] = 2
    box = np.zeros((8, 8), bool)
    box[:2, :2] = True
    assert hits(segments, box).tolist() == [True, False, True]


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
        return PointingRecord("c", level, hit, 0.1, BadgeRemoval(before, after, level, int(after)))

    s = summarise([rec(4, True, 3.5, 2.2), rec(3, False, 3.2, 2.1), rec(1, True, 1.4, 1.3)], num_levels=5)
    assert s["badge_covers"] == 3 and s["removal_level_lowered"] == 2 and s["removal_matters"]
    assert s["high_level_badge_covers"] == 2 and s["pointing_hits"] == 1 and s["pointing_rate"] == 0.5
    assert summarise([], 5) == {}
