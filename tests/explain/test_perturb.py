"""Vectorised perturbations against lime's loop, and the input-space fast path against uint8."""

from __future__ import annotations

import numpy as np
import torch

from bookcover.data.batches import eval_batch
from bookcover.explain.explainer import crop_segments
from bookcover.explain.perturb import fill_image, perturb, perturb_reference
from bookcover.explain.segment import segment
from tests.explain.helpers import CROP, cover, tiny_model


def lime_fill(image, segments):
    """lime_image.explain_instance's hide_color=None fill, verbatim."""
    fudged = image.copy()
    for x in np.unique(segments):
        fudged[segments == x] = (
            np.mean(image[segments == x][:, 0]),
            np.mean(image[segments == x][:, 1]),
            np.mean(image[segments == x][:, 2]),
        )
    return fudged


def test_fill_matches_lime_mean_and_constant():
    image = cover()
    segments = segment(image)
    assert np.array_equal(fill_image(image, segments), lime_fill(image, segments))
    assert (fill_image(image, segments, 0) == 0).all()
    assert (fill_image(image, segments, 128) == 128).all()


def test_perturb_equals_lime_loop():
    rng = np.random.default_rng(0)
    image = cover()
    segments = segment(image, "slic")
    masks = rng.integers(0, 2, (25, int(segments.max()) + 1))
    masks[0] = 1
    fill = fill_image(image, segments)
    ours = perturb(*(torch.from_numpy(a) for a in (image, segments, masks, fill)))
    assert np.array_equal(ours.numpy(), perturb_reference(image, fill, segments, masks))
    assert np.array_equal(ours[0].numpy(), image)  # row 0 is the unperturbed cover


def test_input_space_perturbation_is_bit_identical_to_preparing_uint8():
    """Building perturbations after normalisation gives exactly eval_batch(perturbed uint8)."""
    image, model = cover(), tiny_model()
    segments = segment(image)
    masks = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (16, int(segments.max()) + 1)))
    fill = fill_image(image, segments)
    img_t, seg_t, fill_t = (torch.from_numpy(a) for a in (image, segments, fill))
    slow = eval_batch(perturb(img_t, seg_t, masks, fill_t), CROP)
    from bookcover.data.batches import center_crop

    fast = perturb(
        model.prepare(center_crop(img_t[None], CROP))[0], crop_segments(seg_t, CROP), masks,
        model.prepare(center_crop(fill_t[None], CROP))[0],
    ).permute(0, 3, 1, 2)
    assert torch.equal(fast, slow)
