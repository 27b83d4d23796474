"""Pictures of explanations: a readable overlay on the original cover, lime's own overlay (kept
for parity), and a side-by-side sheet for several covers.

The explanation lives on the model's input: the cover resized to a square ``image_size``
ignoring its aspect ratio, of which the model sees only the center ``crop``. The readable
overlay maps the superpixels back to the original cover at its own aspect ratio (the resize is a
per-axis scale), shades what the model never sees instead of tinting it, tints each superpixel in
proportion to its weight, and carries a legend naming the explained target and the colour scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bookcover.consumer import load_consumer
from bookcover.data.images import open_rgb
from bookcover.errors import CoverError
from bookcover.explain.explainer import Explanation
from bookcover.explain.targets import describe

OVERLAY_FEATURES = 5  # lime's get_image_and_mask default: the 5 largest |weights|
MIN_SIDE = 256  # lime overlay: model inputs are small (72-128 px); enlarge so it is readable
DISPLAY_HEIGHT = 420  # readable overlay: the original cover at this height, its own aspect ratio
SHEET_HEIGHT = 300  # each cover's height on the sheet
SHEET_COLUMNS = 4
SHEET_MAX = 16
MAX_ALPHA = 0.65  # the tint of the superpixel with the largest |weight|
DESATURATE = 0.7  # how far the cover under the tints is turned grey (the plain cover sits beside it)
GAP = 6
RAISES = np.array([0, 200, 70], np.float64)  # green: the superpixel raises the target
LOWERS = np.array([230, 0, 170], np.float64)  # magenta: it lowers the target
BOUNDARY = (20, 60, 255)  # blue: no tint is blue, so boundaries never read as a weight
UNSEEN_GREY = np.array([150, 150, 150], np.float64)
HATCH = (95, 95, 95)
LEGEND_WIDTH = 330
TEXT = (20, 20, 20)


def overlay(exp: Explanation, num_features: int = OVERLAY_FEATURES) -> np.ndarray:
    """lime's ``get_image_and_mask(positive_only=False)`` + ``mark_boundaries``, as uint8.

    The num_features superpixels with the largest |weight| are tinted: the green channel set
    to the image maximum where the weight is positive, the red channel where it is negative.
    Written as ``<cover>.overlay_lime.png``, pixel for pixel what lime draws.
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


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def original_cover(source: str | Path | None, exp: Explanation) -> np.ndarray:
    """The cover as the user has it (RGB, own aspect ratio); the model's input if it cannot be read."""
    if source is not None:
        try:
            return np.asarray(open_rgb(source, (DISPLAY_HEIGHT, DISPLAY_HEIGHT)), dtype=np.uint8)
        except CoverError:
            pass
    return exp.image


def display_size(shape: tuple[int, ...], height: int) -> tuple[int, int]:
    """(height, width) that keeps the original's aspect ratio at the given height."""
    return height, max(1, round(shape[1] * height / shape[0]))


def segments_on(segments: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The (H, W) superpixel map of the model's input, nearest-neighbour on a (h, w) picture.

    The model's input is the original resized to (H, W) ignoring aspect, a per-axis scale, so a
    display pixel's centre maps to input pixel floor((y + 0.5) * H / h) (and likewise for x).
    """
    h, w = size
    rows = np.minimum(((np.arange(h) + 0.5) * segments.shape[0] / h).astype(np.int64), segments.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * segments.shape[1] / w).astype(np.int64), segments.shape[1] - 1)
    return segments[rows[:, None], cols[None, :]]


def seen_mask(input_size: tuple[int, int], crop: int, size: tuple[int, int]) -> np.ndarray:
    """Which (h, w) picture pixels fall inside the model's center crop of its (H, W) input."""
    H, W = input_size
    offset = load_consumer().center_offset  # the crop production and evaluation use
    top, left = offset(H, crop), offset(W, crop)
    h, w = size
    ys = (np.arange(h) + 0.5) * H / h
    xs = (np.arange(w) + 0.5) * W / w
    rows = (ys >= top) & (ys < top + crop)
    cols = (xs >= left) & (xs < left + crop)
    return rows[:, None] & cols[None, :]


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour lies in another superpixel (2 px wide lines)."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= edge[:, :-1].copy()
    edge[1:, :] |= edge[:-1, :].copy()
    return edge


def tint(picture: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Blend each superpixel towards green (w > 0) or magenta (w < 0), alpha = MAX_ALPHA |w| / max|w|."""
    scale = float(np.abs(weights).max()) if weights.size else 0.0
    alpha = MAX_ALPHA * np.abs(weights) / scale if scale > 0 else np.zeros_like(weights)
    colour = np.where((weights >= 0)[:, None], RAISES, LOWERS)
    a = alpha[labels][..., None]
    return picture * (1 - a) + colour[labels] * a


def grey_levels(picture: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601, as PIL's "L"), repeated over three channels."""
    lum = picture @ np.array([0.299, 0.587, 0.114])
    return np.repeat(lum[..., None], 3, axis=-1)


def shade_unseen(picture: np.ndarray, seen: np.ndarray, original: np.ndarray | None = None) -> np.ndarray:
    """Grey out and hatch what the model never sees (from the untinted ``original`` when given):
    it carries no weight, so it gets no tint, and no colour that could be read as one."""
    out = picture.copy()
    base = grey_levels(picture if original is None else original)
    out[~seen] = 0.35 * base[~seen] + 0.65 * UNSEEN_GREY
    yy, xx = np.indices(seen.shape)
    hatch = ((yy + xx) % 10 < 2) & ~seen
    out[hatch] = HATCH
    return out


def explained_picture(exp: Explanation, original: np.ndarray, crop: int, height: int) -> np.ndarray:
    """The original cover at ``height``, tinted by weight, boundaries drawn, unseen area hatched."""
    size = display_size(original.shape, height)
    picture = np.asarray(Image.fromarray(original).resize(size[::-1], Image.Resampling.LANCZOS), np.float64)
    labels = segments_on(exp.segments, size)
    seen = seen_mask(exp.segments.shape, crop, size)
    # Mostly grey underneath, so that a red or green cover is not read as a weight's tint.
    muted = (1 - DESATURATE) * picture + DESATURATE * grey_levels(picture)
    out = tint(muted, labels, np.asarray(exp.weights, np.float64))
    out[boundaries(labels) & seen] = BOUNDARY
    out = shade_unseen(out, seen, picture)
    return out.round().clip(0, 255).astype(np.uint8)


def colour_bar(width: int, height: int) -> Image.Image:
    """magenta (lowers, -max|w|) -> no tint (0) -> green (raises, +max|w|), over mid grey."""
    t = np.linspace(-1.0, 1.0, width)
    colour = np.where((t >= 0)[:, None], RAISES, LOWERS)
    a = (MAX_ALPHA * np.abs(t))[:, None]
    row = np.full((width, 3), 200.0) * (1 - a) + colour * a
    return Image.fromarray(np.broadcast_to(row, (height, width, 3)).round().astype(np.uint8))


def legend(exp: Explanation, height: int, width: int = LEGEND_WIDTH) -> Image.Image:
    """What is explained, the colour scale with its numbers, and the two marks."""
    panel = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    big, small = font(17), font(14)
    target = describe(exp.target, exp.task)
    scale = float(np.abs(exp.weights).max()) if exp.weights.size else 0.0
    y = 10
    for line, f in (
        (f"LIME: what moves {target}", big),
        (f"{target} = {exp.value:.3f}", small),
        (f"predicted level {exp.rank} (0 = least popular)", small),
        (f"surrogate fit R^2 {exp.r2:.2f}, {exp.n_segments} superpixels", small),
    ):
        draw.text((10, y), line, fill=TEXT, font=f)
        y += 26 if f is big else 20
    y += 10
    draw.text((10, y), "tint = weight; opacity grows with |weight|", fill=TEXT, font=small)
    y += 22
    bar_w = width - 20
    panel.paste(colour_bar(bar_w, 18), (10, y))
    draw.rectangle([10, y, 10 + bar_w - 1, y + 17], outline=(120, 120, 120))
    y += 22
    draw.text((10, y), f"-{scale:.3g}", fill=TEXT, font=small)
    draw.text((10 + bar_w // 2 - 4, y), "0", fill=TEXT, font=small)
    right = f"+{scale:.3g}"
    draw.text((10 + bar_w - draw.textlength(right, font=small), y), right, fill=TEXT, font=small)
    y += 20
    draw.text((10, y), f"lowers {target}", fill=tuple(int(v) for v in LOWERS), font=small)
    raises = f"raises {target}"
    draw.text((10 + bar_w - draw.textlength(raises, font=small), y), raises, fill=tuple(int(v) for v in RAISES * 0.8),
              font=small)
    y += 32
    draw.line([10, y + 8, 40, y + 8], fill=BOUNDARY, width=2)
    draw.text((50, y), "superpixel boundary", fill=TEXT, font=small)
    y += 26
    swatch = shade_unseen(np.full((18, 30, 3), 255.0), np.zeros((18, 30), bool)).astype(np.uint8)
    panel.paste(Image.fromarray(swatch), (10, y))
    draw.text((50, y), "not seen by the model", fill=TEXT, font=small)
    draw.text((50, y + 17), "(outside its center crop)", fill=TEXT, font=small)
    return panel


def side_by_side(exp: Explanation, original: np.ndarray, crop: int, height: int) -> np.ndarray:
    """The plain cover | the explained cover, both at ``height`` and the cover's aspect ratio."""
    size = display_size(original.shape, height)
    plain = np.asarray(Image.fromarray(original).resize(size[::-1], Image.Resampling.LANCZOS))
    explained = explained_picture(exp, original, crop, height)
    return np.concatenate([plain, np.full((height, GAP, 3), 255, np.uint8), explained], axis=1)


def readable_overlay(exp: Explanation, source: str | Path | None, crop: int, height: int = DISPLAY_HEIGHT) -> np.ndarray:
    """The default ``<cover>.overlay.png``: the cover, the explained cover and the legend."""
    pair = side_by_side(exp, original_cover(source, exp), crop, height)
    panel = legend(exp, max(height, 300))
    canvas = Image.new("RGB", (pair.shape[1] + panel.width, max(height, panel.height)), (255, 255, 255))
    canvas.paste(Image.fromarray(pair), (0, 0))
    canvas.paste(panel, (pair.shape[1], 0))
    return np.asarray(canvas)


@dataclass
class Picture:
    """One explained cover as the sheet needs it."""

    name: str
    exp: Explanation
    source: Path | None
    crop: int


def write_overlays(exp: Explanation, source: str | Path, crop: int, out: Path, stem: str) -> Picture:
    """Write ``<stem>.overlay.png`` (readable) and ``<stem>.overlay_lime.png`` (lime's own)."""
    save_png(readable_overlay(exp, source, crop), out / f"{stem}.overlay.png")
    save_png(overlay(exp), out / f"{stem}.overlay_lime.png")
    return Picture(Path(source).name, exp, Path(source), crop)


def sheet(items: list[Picture], path: Path, height: int = SHEET_HEIGHT) -> None:
    """Original | explained pairs with a readable caption, SHEET_COLUMNS per row, at most
    SHEET_MAX covers, under one legend line. Each cover's tint is scaled to its own max |weight|."""
    items = items[:SHEET_MAX]
    big, small = font(18), font(15)
    tiles = []
    for item in items:
        pair = side_by_side(item.exp, original_cover(item.source, item.exp), item.crop, height)
        tile = Image.new("RGB", (max(pair.shape[1], 260), height + 70), (255, 255, 255))
        tile.paste(Image.fromarray(pair), (0, 0))
        draw = ImageDraw.Draw(tile)
        exp = item.exp
        target = describe(exp.target, exp.task)
        draw.text((2, height + 4), item.name[:32], fill=TEXT, font=big)
        draw.text((2, height + 28), f"level {exp.rank}  {target} = {exp.value:.3f}", fill=TEXT, font=small)
        draw.text((2, height + 48), f"fit R^2 {exp.r2:.2f}  max |weight| {np.abs(exp.weights).max():.3g}", fill=TEXT,
                  font=small)
        tiles.append(tile)
    tw = max(t.width for t in tiles)
    th = max(t.height for t in tiles)
    cols = min(SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // cols)
    head = 40
    key = (("green raises the target,", RAISES * 0.8), ("magenta lowers it", LOWERS),
           ("(opacity: |weight| / max |weight| of each cover);", TEXT), ("blue: superpixel boundaries;", BOUNDARY),
           ("hatched: not seen by the model", (90, 90, 90)))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    key_width = sum(int(measure.textlength(text, font=small)) + 10 for text, _ in key) + 8
    canvas = Image.new("RGB", (max(cols * (tw + 16), key_width), head + rows * (th + 16)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 8
    for text, colour in key:
        draw.text((x, 10), text, fill=tuple(int(v) for v in colour), font=small)
        x += int(draw.textlength(text, font=small)) + 10
    for i, tile in enumerate(tiles):
        canvas.paste(tile, ((i % cols) * (tw + 16) + 8, head + (i // cols) * (th + 16)))
    canvas.save(path, format="PNG")
