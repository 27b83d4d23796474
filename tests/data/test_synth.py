"""Synthetic covers: the layout, the documented rule, boxes, determinism per seed."""

import csv
import hashlib

import numpy as np

from bookcover.data.synth import WEIGHTS, latent_features, load_planted, synthesise


def _digest(folder):
    h = hashlib.sha256()
    for i in range(20):
        h.update((folder / "images" / f"{i}.jpg").read_bytes())
    h.update((folder / "book_data.csv").read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = synthesise(tmp_path / "a", n=20, seed=1, quiet=True)
    b = synthesise(tmp_path / "b", n=20, seed=1, quiet=True)
    c = synthesise(tmp_path / "c", n=20, seed=2, quiet=True)
    assert _digest(a) == _digest(b) != _digest(c)


def test_rows_are_in_popularity_order_with_boxes(synth_covers):
    planted = load_planted(synth_covers)
    scores = [c["score"] for c in planted["covers"]]
    assert scores == sorted(scores, reverse=True)
    with open(synth_covers / "book_data.csv") as fh:
        counts = [int(r["book_rating_count"]) for r in csv.DictReader(fh)]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts)
    for c in planted["covers"]:
        assert ("badge" in c["boxes"]) == bool(c["features"]["badge"])
        x0, y0, x1, y1 = c["boxes"]["title"]
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 192


def test_badge_pixels_are_gold_inside_the_box(synth_covers):
    from PIL import Image

    cover = next(c for c in load_planted(synth_covers)["covers"] if "badge" in c["boxes"])
    img = np.asarray(Image.open(synth_covers / "images" / f"{cover['row']}.jpg"))
    x0, y0, x1, y1 = cover["boxes"]["badge"]
    patch = img[y0:y1, x0:x1].reshape(-1, 3).astype(int)
    gold = (patch[:, 0] > 200) & (patch[:, 1] > 150) & (patch[:, 2] < 120)
    assert gold.mean() > 0.3


def test_score_follows_the_documented_rule():
    f = latent_features(20000, seed=0)
    signal = sum(WEIGHTS[k] * f[k] for k in WEIGHTS)
    residual = f["score"] - signal
    assert abs(residual.std() - 0.3) < 0.01 and abs(residual.mean()) < 0.01
    assert abs(f["badge"].mean() - 0.35) < 0.02
