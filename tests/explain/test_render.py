"""The readable overlay (issue 11, item 17): the original cover at its own aspect ratio, tinted in
proportion to each weight, the unseen border hatched and untinted, boundaries in their own colour,
a legend; lime's own overlay kept beside it; the README's lime recipe reproduces the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bookcover.explain import render
from bookcover.explain.adapters import lime_classifier_fn, predict_pixels
from bookcover.explain.explainer import ExplainOptions, Explanation, explain_image
from bookcover.explain.segment import lime_segmentation_fn
from bookcover.explain.targets import target_task
from tests.explain.helpers import cover, tiny_model

GREY = 128


def quadrant_explanation(weights=(1.0, 0.5, -1.0, 0.0), size=48) -> Explanation:
    """Four square superpixels on a size x size model input (ids: TL 0, TR 1, BL 2, BR 3)."""
    half = size // 2
    segments = np.zeros((size, size), np.int64)
    segments[:half, half:] = 1
    segments[half:, :half] = 2
    segments[half:, half:] = 3
    image = np.full((size, size, 3), GREY, np.uint8)
    return Explanation(image=image, segments=segments, fill=image, weights=np.asarray(weights, np.float64),
                       intercept=0.5, r2=0.9, local_pred=0.5, target="proba", task=2, rank=3,
                       probas=[0.9, 0.8, 0.6, 0.2], value=0.6)


@pytest.fixture
def tall_cover(tmp_path):
    """A flat grey 2:3 cover, as most real ones are (200 x 300)."""
    path = tmp_path / "tall.png"
    Image.new("RGB", (200, 300), (GREY,) * 3).save(path)
    return path


def blend(alpha: float, colour: np.ndarray) -> np.ndarray:
    return (1 - alpha) * GREY + alpha * colour


def test_original_aspect_tint_proportional_to_weight_and_unseen_border_untinted(tall_cover):
    """On a flat grey cover, each superpixel shows exactly its tint over the grey."""
    exp = quadrant_explanation()
    crop = 40  # the model sees input pixels 4..43 of 48
    pic = render.explained_picture(exp, render.original_cover(tall_cover, exp), crop, height=420).astype(float)
    assert pic.shape == (420, 280, 3)  # the 2:3 cover keeps its aspect ratio, at least 300 px tall

    def at(row_in: float, col_in: float) -> np.ndarray:  # a display pixel at model-input coordinates
        return pic[int(row_in * 420 / 48), int(col_in * 280 / 48)]

    np.testing.assert_allclose(at(12, 12), blend(render.MAX_ALPHA, render.RAISES), atol=1)  # w = +1: full green
    np.testing.assert_allclose(at(12, 36), blend(render.MAX_ALPHA / 2, render.RAISES), atol=1)  # w = +0.5: half
    np.testing.assert_allclose(at(36, 12), blend(render.MAX_ALPHA, render.LOWERS), atol=1)  # w = -1: magenta
    np.testing.assert_allclose(at(36, 36), [GREY] * 3, atol=1)  # w = 0: untouched
    for row_in, col_in in ((1, 12), (12, 46), (46, 30), (30, 1)):  # outside the center crop
        r, g, b = at(row_in, col_in)
        assert r == g == b, (row_in, col_in)  # grey or hatch: no tint, even over a weighted superpixel
    row = int(12 * 420 / 48)
    boundary = pic[row, 130:150]  # the TL | TR boundary at input column 24 = display x 140
    assert (boundary == render.BOUNDARY).all(axis=1).any()


def test_readable_overlay_has_a_legend_and_the_lime_overlay_is_kept(tall_cover, tmp_path):
    exp = quadrant_explanation()
    picture = render.write_overlays(exp, tall_cover, 40, tmp_path, "tall")
    readable = np.asarray(Image.open(tmp_path / "tall.overlay.png"))
    lime = np.asarray(Image.open(tmp_path / "tall.overlay_lime.png"))
    pictures = 2 * 280 + render.GAP  # the plain cover beside the explained one
    assert readable.shape == (render.DISPLAY_HEIGHT, pictures + render.LEGEND_WIDTH, 3)
    np.testing.assert_array_equal(readable[:, :280], np.full((render.DISPLAY_HEIGHT, 280, 3), GREY))
    np.testing.assert_array_equal(lime, render.overlay(exp))  # lime's own rendering, unchanged
    panel = readable[:, pictures:].astype(int)
    assert (panel.min(axis=2) < 100).sum() > 500  # text was drawn
    bar = panel[panel.shape[0] // 2 - 120 : panel.shape[0] // 2 + 20]
    greenish = (bar[..., 1] > bar[..., 0] + 40) & (bar[..., 1] > bar[..., 2] + 40)
    magentaish = (bar[..., 0] > bar[..., 1] + 40) & (bar[..., 2] > bar[..., 1] + 40)
    assert greenish.any() and magentaish.any()  # the colour scale
    assert picture.name == "tall.png" and picture.crop == 40


def test_legend_names_the_explained_target(monkeypatch):
    drawn = []
    original = render.ImageDraw.ImageDraw.text
    monkeypatch.setattr(render.ImageDraw.ImageDraw, "text",
                        lambda self, xy, text, *a, **k: drawn.append(text) or original(self, xy, text, *a, **k))
    render.legend(quadrant_explanation(), 420)
    assert "LIME: what moves P(level > 2)" in drawn
    assert "-1" in drawn and "+1" in drawn and "superpixel boundary" in drawn
    exp = quadrant_explanation()
    exp.target = "expected"
    drawn.clear()
    render.legend(exp, 420)
    assert "LIME: what moves expected level" in drawn


def test_sheet_is_written_with_readable_tiles(tall_cover, tmp_path):
    exp = quadrant_explanation()
    items = [render.Picture(f"cover{i}.png", exp, tall_cover, 40) for i in range(5)]
    render.sheet(items, tmp_path / "sheet.png")
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.height >= 2 * render.SHEET_HEIGHT and sheet.width >= 4 * 2 * 200


def test_readme_lime_recipe_reproduces_the_cli():
    """bookcover/explain/README.md's recipe: lime_image with output='probas', the CLI's label and
    mean-colour fill gives the CLI's weights."""
    from lime import lime_image

    model, image, seed = tiny_model(), cover(), 5
    ours = explain_image(model, image, ExplainOptions(samples=300, seed=seed))
    rank = int((predict_pixels(model, torch.from_numpy(image[None]))["probas"][0] > 0.5).sum())
    task = target_task(rank)
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    exp = explainer.explain_instance(image, lime_classifier_fn(model, output="probas"), labels=(task,),
                                     top_labels=None, hide_color=None, num_samples=300, batch_size=300,
                                     segmentation_fn=lime_segmentation_fn(seed))
    weights = dict(exp.local_exp[task])
    assert task == ours.task
    np.testing.assert_allclose(ours.weights, [weights[i] for i in range(ours.n_segments)], rtol=0, atol=1e-6)


def test_lime_classifier_fn_outputs():
    model = tiny_model()
    images = np.stack([cover(seed=s) for s in range(3)])
    probas = lime_classifier_fn(model, output="probas")(images)
    levels = lime_classifier_fn(model)(images)
    expected = lime_classifier_fn(model, output="expected")(images)
    assert probas.shape == (3, 4) and levels.shape == (3, 5) and expected.shape == (3, 1)
    np.testing.assert_allclose(expected[:, 0], probas.sum(1))
    with pytest.raises(ValueError, match="unknown output"):
        lime_classifier_fn(model, output="logits")


def test_a_coloured_cover_is_muted_under_the_tints_and_grey_where_unseen(tmp_path):
    """A red cover must not read as 'lowers' nor a green one as 'raises': the cover under the
    tints is mostly grey, and the unseen border is grey whatever the cover's colour."""
    path = tmp_path / "red.png"
    Image.new("RGB", (200, 300), (180, 20, 30)).save(path)
    exp = quadrant_explanation(weights=(0.0, 0.0, 0.0, 0.0))
    pic = render.explained_picture(exp, render.original_cover(path, exp), 40, height=420).astype(int)
    inside = pic[200, 70]
    assert inside[0] - inside[1] < 0.4 * (180 - 20)  # far less red than the cover
    r, g, b = pic[3, 140]  # above the crop
    assert r == g == b
