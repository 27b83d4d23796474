"""Pictures of explanations: lime-style overlays and a side-by-side sheet for several covers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bookcover.explain.explainer import Explanation

OVERLAY_FEATURES = 5  # lime's get_image_and_mask default: the 5 largest |weights|
MIN_SIDE = 256  # model inputs are small (72-128 px); enlarge so the overlay is readable
SHEET_COLUMNS = 4
SHEET_MAX = 16


def overlay(exp: Explanation, num_features: int = OVERLAY_FEATURES) -> np.ndarray:
    """lime's ``get_image_and_mask(positive_only=False)`` + ``mark_boundaries``, as uint8.

    The num_features superpixels with the largest |weight| are tinted: the green channel set
    to the image maximum where the weight is positive, the red channel where it is negative.
    """
    # Imported here: scikit-image pulls in scipy (~0.5 s), which a run only needs once the first
    # overlay is drawn, on the writer thread, while the device works on the next cover.
    from skimage.segmentation import mark_boundaries

    image, segments = exp.image, exp.segments
    temp = image.copy()
    mask = np.zeros(segments.shape, np.int64)
    for f in exp.ranked()[:num_features]:
        w = exp.weights[f]
        where = segments == f
        mask[where] = -1 if w < 0 else 1
        temp[where, 0 if w < 0 else 1] = image.max()
    marked = mark_boundaries(temp / 255.0, mask)
    return enlarge((marked * 255).round().astype(np.uint8))


def enlarge(image: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so that superpixels stay crisp."""
    factor = max(1, -(-min_side // min(image.shape[:2])))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG")


def sheet(items: list[tuple[str, Explanation]], path: Path) -> None:
    """Original | overlay pairs with a caption, SHEET_COLUMNS per row, at most SHEET_MAX covers."""
    items = items[:SHEET_MAX]
    tiles = []
    for name, exp in items:
        pair = np.concatenate([enlarge(exp.image), overlay(exp)], axis=1)
        tile = Image.new("RGB", (pair.shape[1], pair.shape[0] + 28), (255, 255, 255))
        tile.paste(Image.fromarray(pair), (0, 0))
        draw = ImageDraw.Draw(tile)
        draw.text((4, pair.shape[0] + 2), f"{name[:40]}", fill=(0, 0, 0))
        draw.text((4, pair.shape[0] + 14), f"level {exp.rank}  target {exp.value:.3f}  R2 {exp.r2:.2f}", fill=(0, 0, 0))
        tiles.append(tile)
    tw = max(t.width for t in tiles)
    th = max(t.height for t in tiles)
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    canvas = Image.new("RGB", (cols * (tw + 8), rows * (th + 8)), (255, 255, 255))
    for i, tile in enumerate(tiles):
        canvas.paste(tile, ((i % cols) * (tw + 8), (i // cols) * (th + 8)))
    canvas.save(path, format="PNG")
