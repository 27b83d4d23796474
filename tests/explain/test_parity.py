"""Parity with lime_image.LimeImageExplainer (lime 0.2.0.1): masks, images, coefficients, top-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime import lime_image  # a hard import: the parity test must run (lime is in the dev extras), never skip

from bookcover.explain.adapters import predict_pixels
from bookcover.explain.explainer import ExplainOptions, explain_image
from bookcover.explain.masks import draw_masks, segmentation_seed
from bookcover.explain.perturb import fill_image, perturb
from bookcover.explain.segment import lime_segmentation_fn, segment
from bookcover.explain.surrogate import fit_surrogate
from tests.explain.helpers import cover, tiny_model

SAMPLES = 300


def run_lime(image, model, seed, hide_color, batch_size=SAMPLES, segment_size="cli"):
    """lime's explanation plus every image it fed the model and every prediction it got back.

    lime gets the CLI's segmentation (the input resampled to SEGMENT_SIZE) through
    ``lime_segmentation_fn``; ``segment_size=None``: lime's own default quickshift call."""
    seen, preds = [], []

    def classifier_fn(images):
        seen.append(images.copy())
        out = predict_pixels(model, torch.from_numpy(images))["probas"].double().numpy()
        preds.append(out)
        return out

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    segmentation_fn = lime_segmentation_fn(seed) if segment_size == "cli" else None
    exp = explainer.explain_instance(
        image, classifier_fn, top_labels=None, labels=(0, 1, 2, 3), hide_color=hide_color,
        num_samples=SAMPLES, batch_size=batch_size, segmentation_fn=segmentation_fn,
    )
    return exp, np.concatenate(seen), np.concatenate(preds)


@pytest.mark.parametrize("seed,hide_color,segment_size", [(0, None, "cli"), (7, 0, "cli"), (0, None, None)])
def test_same_segments_masks_and_bit_identical_images(seed, hide_color, segment_size):
    image, model = cover(), tiny_model()
    exp, lime_imgs, _ = run_lime(image, model, seed, hide_color, segment_size=segment_size)
    rs = np.random.RandomState(seed)
    if segment_size is None:  # segmented as it is: lime's own default call, byte for byte
        segments = segment(image, "quickshift", segmentation_seed(rs), size=None)
    else:
        segments = segment(image, "quickshift", segmentation_seed(rs))
    assert np.array_equal(segments, exp.segments)
    assert segments.max() + 1 == len(np.unique(segments)) and segments.min() == 0
    masks = draw_masks(rs, SAMPLES, int(segments.max()) + 1)
    fill = fill_image(image, segments, hide_color)
    ours = perturb(torch.from_numpy(image), torch.from_numpy(segments), torch.from_numpy(masks), torch.from_numpy(fill))
    assert ours.dtype == torch.uint8
    assert np.array_equal(ours.numpy(), lime_imgs)  # bit-identical perturbed images


def test_coefficients_match_lime_given_identical_predictions():
    image, model = cover(), tiny_model()
    exp, _, preds = run_lime(image, model, 3, None)
    rs = np.random.RandomState(3)
    segments = segment(image, "quickshift", segmentation_seed(rs))
    masks = torch.from_numpy(draw_masks(rs, SAMPLES, int(segments.max()) + 1))
    for label in (0, 1, 2, 3):
        fit = fit_surrogate(masks, torch.from_numpy(preds[:, label]))
        lime_coef = dict(exp.local_exp[label])
        ours = fit.coef.numpy()
        np.testing.assert_allclose(ours, [lime_coef[i] for i in range(len(ours))], rtol=0, atol=1e-8)
        assert fit.intercept == pytest.approx(exp.intercept[label], abs=1e-8)
        ranked = np.argsort(-np.abs(ours), kind="stable")[:5]
        assert [int(i) for i in ranked] == [int(f) for f, _ in exp.local_exp[label][:5]]


def test_explain_image_end_to_end_matches_lime():
    """The whole fast path (input-space perturbations, chunked model, torch ridge) vs lime."""
    image, model = cover(), tiny_model()
    ours = explain_image(model, image, ExplainOptions(samples=SAMPLES, seed=11, batch=SAMPLES))
    exp, _, _ = run_lime(image, model, 11, None)
    lime_coef = dict(exp.local_exp[ours.task])
    np.testing.assert_allclose(ours.weights, [lime_coef[i] for i in range(ours.n_segments)], rtol=0, atol=1e-6)
    assert ours.ranked()[:5] == [int(f) for f, _ in exp.local_exp[ours.task][:5]]
