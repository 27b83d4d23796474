"""Superpixels for LIME: the study's quickshift (or SLIC), labelled 0..n-1 as lime assumes.

Granularity. quickshift's kernel and distance are in pixels, so the number of superpixels
grows with the image: on the quick preset's 72 px input the study's settings find only 3-7
superpixels (one of them can be the whole lower half of a cover), on a 128 px input 10-17.
The model input is therefore resampled to SEGMENT_SIZE px square (bicubic) for segmentation,
and the labels are mapped back to the input pixel by pixel (nearest, at pixel centres): about
40-65 superpixels on a 2:3 cover whatever the preset, close to what quickshift finds on a
200 x 300 px Goodreads cover at its own size (35-55), and small enough that the 31 x 31 px
award badge of a synthetic cover can be a superpixel of its own. ``size=None`` segments the
input as it is, which is lime_image's default; :func:`lime_segmentation_fn` hands the same
segmentation to lime.
"""

from __future__ import annotations

import inspect
from functools import cache

import numpy as np

# The study's (and lime's default) quickshift parameters.
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
SEGMENTERS = ("quickshift", "slic")
SEGMENT_SIZE = 256  # px square the model input is resampled to for segmentation (see above)


@cache
def _quickshift_takes_seed() -> bool:
    from skimage.segmentation import quickshift

    return "random_seed" in inspect.signature(quickshift).parameters


def segment(
    image: np.ndarray, method: str = "quickshift", random_seed: int = 0, size: int | None = SEGMENT_SIZE
) -> np.ndarray:
    """Segment a uint8 (H, W, 3) image into superpixels with labels 0..n-1 (int64, (H, W)).

    The image is segmented resampled to ``size`` x ``size`` and the labels mapped back to
    (H, W) (``None`` or the image's own square size: segmented as it is, lime's default).

    ``random_seed`` is the seed lime draws from its RandomState for quickshift. lime's wrapper
    passes it only when quickshift has a ``random_seed`` argument (scikit-image < 0.25); newer
    versions renamed it ``rng`` and lime silently drops it, so quickshift uses its default. We
    do the same, so the segmentation matches lime's with whichever scikit-image is installed.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if size is not None and tuple(image.shape[:2]) != (size, size):
        from PIL import Image

        big = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)
        return dense_labels(nearest_labels(segment(big, method, random_seed, None), image.shape[:2]))
    # scikit-image is imported here, not at module level: a GPU box may time the device part without it.
    from skimage.segmentation import quickshift, slic

    if method == "quickshift":
        extra = {"random_seed": random_seed} if _quickshift_takes_seed() else {}
        labels = quickshift(image, **QUICKSHIFT, **extra)
    elif method == "slic":
        labels = slic(image, n_segments=50, compactness=10, start_label=0)
    else:
        raise ValueError(f"unknown segmenter {method!r}; choose one of {', '.join(SEGMENTERS)}")
    return dense_labels(labels)


def dense_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel so that segment ids are exactly 0..n-1 (lime indexes masks by id), int64."""
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int64)


def nearest_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A (h, w) label map sampled at the centres of an (H, W) grid's pixels (nearest neighbour)."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def lime_segmentation_fn(seed: int = 0, method: str = "quickshift", size: int | None = SEGMENT_SIZE):
    """A ``segmentation_fn`` for ``lime_image.explain_instance`` that gives lime the CLI's superpixels.

    lime draws its quickshift seed from ``RandomState(seed)`` before segmenting, whatever
    segmentation_fn it is given, so its masks stay the CLI's; this draws the same seed.
    """
    random_seed = int(np.random.RandomState(seed).randint(0, high=1000))

    def segmentation_fn(image: np.ndarray) -> np.ndarray:
        return segment(np.asarray(image, dtype=np.uint8), method, random_seed, size)

    return segmentation_fn
