"""Perturbed images: every sample built on the model's device in one vectorised step.

lime builds each perturbed image in a Python loop (a deepcopy and one boolean mask per hidden
superpixel); here a (N, n_segments) mask is gathered through the segment map and a single
``torch.where`` picks image or fill per pixel, so N images cost one kernel, not N * n loops.
:func:`perturb_reference` keeps lime's loop as the oracle the tests compare against.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from bookcover.explain.fill import fill_image  # noqa: F401  (re-exported: the fill is part of perturbing)


def perturb(image: torch.Tensor, segments: torch.Tensor, masks: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """(H, W, C) image/fill, (H, W) segment ids, (N, n) 0/1 masks -> (N, H, W, C), image dtype.

    Pixel p of sample i keeps the image where masks[i, segments[p]] is 1 and takes the fill
    otherwise: ``where(mask[:, segments], image, fill)``.
    """
    keep = masks.to(torch.bool)[:, segments]  # (N, H, W)
    return torch.where(keep[..., None], image, fill)


def perturb_reference(image: np.ndarray, fudged: np.ndarray, segments: np.ndarray, data: np.ndarray) -> np.ndarray:
    """lime 0.2.0.1's ``data_labels`` loop, verbatim in effect: the oracle for :func:`perturb`."""
    imgs = []
    for row in data:
        temp = copy.deepcopy(image)
        zeros = np.where(row == 0)[0]
        mask = np.zeros(segments.shape).astype(bool)
        for z in zeros:
            mask[segments == z] = True
        temp[mask] = fudged[mask]
        imgs.append(temp)
    return np.array(imgs)
