"""Reproducibility, options and outputs of one explanation."""

from __future__ import annotations

import numpy as np
import pytest

from bookcover.explain.explainer import ExplainOptions, explain_image
from bookcover.explain.render import overlay
from bookcover.explain.report import weights_record
from bookcover.explain.segment import segment
from bookcover.explain.targets import target_task
from tests.explain.helpers import SIZE, cover, tiny_model


def test_same_seed_same_weights_other_seed_other_masks():
    model, image = tiny_model(), cover()
    a = explain_image(model, image, ExplainOptions(samples=150, seed=5))
    b = explain_image(model, image, ExplainOptions(samples=150, seed=5, batch=40))  # chunking does not matter
    c = explain_image(model, image, ExplainOptions(samples=150, seed=6))
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-9)
    assert weights_record("x", a, ExplainOptions(seed=5), None) == weights_record("x", a, ExplainOptions(seed=5), None)
    assert not np.allclose(a.weights, c.weights)


def test_targets_and_prediction_of_the_unperturbed_cover():
    model, image = tiny_model(), cover()
    p = explain_image(model, image, ExplainOptions(samples=60, target="proba"))
    e = explain_image(model, image, ExplainOptions(samples=60, target="expected"))
    assert p.rank == sum(v > 0.5 for v in p.probas) and p.task == target_task(p.rank)
    assert p.value == pytest.approx(p.probas[p.task])
    assert e.value == pytest.approx(sum(e.probas))
    assert target_task(0) == 0 and target_task(3) == 2
    with pytest.raises(ValueError, match="unknown target"):
        explain_image(model, image, ExplainOptions(samples=10, target="nope"))


def test_segmenters_label_densely_and_reject_unknown():
    image = cover()
    for method in ("quickshift", "slic"):
        seg = segment(image, method)
        assert seg.shape == (SIZE, SIZE) and seg.min() == 0
        assert np.array_equal(np.unique(seg), np.arange(seg.max() + 1))
    with pytest.raises(ValueError, match="unknown segmenter"):
        segment(image, "felzenszwalb")
    with pytest.raises(ValueError, match="expects"):
        explain_image(tiny_model(), cover(size=SIZE + 8), ExplainOptions(samples=10))


def test_overlay_tints_positive_green_and_negative_red_like_lime():
    exp = explain_image(tiny_model(), cover(), ExplainOptions(samples=200, segmenter="slic", seed=2))
    pic = overlay(exp, num_features=exp.n_segments)
    factor = pic.shape[0] // SIZE
    assert pic.shape == (SIZE * factor, SIZE * factor, 3)
    small = pic[::factor, ::factor]
    assert exp.weights.max() > 0 > exp.weights.min()
    pos, neg = int(np.argmax(exp.weights)), int(np.argmin(exp.weights))
    assert np.median(small[exp.segments == pos][:, 1]) == exp.image.max()  # green channel raised
    assert np.median(small[exp.segments == neg][:, 0]) == exp.image.max()  # red channel raised


def test_quick_preset_covers_get_the_studys_granularity(tmp_path):
    """72 px inputs are segmented at SEGMENT_SIZE: 30-80 superpixels, not the 3-7 of quickshift at 72 px."""
    from bookcover.data.images import load_cover
    from bookcover.data.synth import synthesise

    covers = synthesise(tmp_path / "covers", n=4, seed=77, quiet=True)
    for row in range(4):
        image = load_cover(covers / "images" / f"{row}.jpg", (72, 72))
        n = int(segment(image).max()) + 1
        assert 30 <= n <= 80, n
        assert int(segment(image, size=None).max()) + 1 < 10  # what the study's settings give at 72 px
