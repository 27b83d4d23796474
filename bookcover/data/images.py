"""Decode one cover into RGB uint8, whatever its mode, or say in one line why it cannot be read.

Large covers are bounded before any pixel is decoded: a JPEG is decoded at a reduced scale
(libjpeg's DCT scaling, ``Image.draft``) when it is much larger than the size it will be resized
to, and a cover whose decoded size would exceed MAX_COVER_MEGAPIXELS is refused from its header.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bookcover.errors import CoverError, DataError

# Covers are resized to a square, as the study's torchvision Resize((128, 128)) did.
RESIZE_FILTER = Image.Resampling.BILINEAR
# The most pixels one cover may decode to (after JPEG draft scaling). 40 MP is a 5,000 x 8,000
# scan; a 12,000 x 12,000 PNG would otherwise take over 2 GB to decode and resize.
MAX_COVER_MEGAPIXELS = 40.0
# A JPEG is decoded at 1/2, 1/4 or 1/8 scale only while it stays at least this many times the
# target size on both sides, so the bilinear resize that follows sees the same detail.
DRAFT_MARGIN = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Pillow warns (two lines on stderr) above its own decompression-bomb threshold; our limit is
# lower and checked from the header, so the warning says nothing we do not handle.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def open_rgb(path: str | os.PathLike, size: tuple[int, int] | None = None) -> Image.Image:
    """Open a cover as an RGB PIL image.

    Grayscale, palette, CMYK and 16-bit covers are converted; transparent ones are composited
    on white (a cover's paper). With ``size`` = (height, width) it will be resized to, a large
    JPEG is decoded at a reduced scale (see draft_size). Corrupt, truncated, empty, non-image
    and too-large files raise CoverError.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CoverError(f"{path}: empty file")
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft(None, draft_size(size))
            check_pixels(path, img.size)
            img.load()  # force a full decode so truncation is caught here
            return _to_rgb(img)
    except CoverError:
        raise
    except FileNotFoundError:
        raise CoverError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CoverError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise CoverError(f"{path}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise CoverError(f"{path}: {too_large(exc)}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CoverError(f"{path}: corrupt or truncated image ({exc})") from None


def draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """The (width, height) to request from ``Image.draft`` for a resize to (height, width)."""
    height, width = size
    return (DRAFT_MARGIN * width, DRAFT_MARGIN * height)


def check_pixels(path: Path, dims: tuple[int, int]) -> None:
    """Refuse a cover whose decoded (width, height) exceeds MAX_COVER_MEGAPIXELS, before decoding."""
    megapixels = dims[0] * dims[1] / 1e6
    if megapixels > MAX_COVER_MEGAPIXELS:
        raise CoverError(
            f"{path}: image too large to decode ({dims[0]} x {dims[1]} = {round(megapixels, 1):g} megapixels; "
            f"the limit is {MAX_COVER_MEGAPIXELS:g}): scale it down first"
        )


def too_large(exc: Exception) -> str:
    """Pillow's decompression-bomb refusal, said as what it is."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
    return (f"image too large to decode{pixels}: Pillow refuses it as a possible decompression bomb; "
            f"the limit for covers is {MAX_COVER_MEGAPIXELS:g} megapixels")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = max(float(arr.max()), 1.0)
        img = Image.fromarray((arr / hi * 255.0).round().astype(np.uint8), mode="L")
    return img.convert("RGB")


def load_cover(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a cover into an (H, W, 3) uint8 array, resized to size=(height, width) if given."""
    img = open_rgb(path, size)
    if size is not None:
        img = resize_cover(img, size)
    return np.asarray(img, dtype=np.uint8)


def resize_cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (height, width), ignoring aspect ratio as the study did."""
    height, width = size
    if img.size == (width, height):
        return img
    return img.resize((width, height), RESIZE_FILTER)


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under a folder, recursively, in natural order (2.jpg before 10.jpg)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=natural_key)


def cover_paths(covers: Sequence[str | os.PathLike], images: str | os.PathLike | None, verb: str) -> list[Path]:
    """The covers a command works on: those named, then those under --images; an empty list is
    a one-line usage error that says which was missing (an --images folder with no covers is named)."""
    from bookcover.errors import UsageError

    found = find_images(images) if images is not None else []
    if images is not None and not found:
        raise UsageError(f"--images {images}: the folder holds no covers ({' '.join(IMAGE_SUFFIXES)})")
    paths = [Path(c) for c in covers] + found
    if not paths:
        raise UsageError(f"nothing to {verb}: give COVER files or --images DIR")
    return paths


def natural_key(path: Path) -> tuple:
    """Sort key that orders digit runs numerically, folder by folder."""
    parts = re.split(r"(\d+)", str(path))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def decode_ahead(
    load: Callable[[str | os.PathLike], np.ndarray], paths: Sequence[str | os.PathLike], batch_size: int,
    workers: int | None = None, ahead: int = 2,
) -> Iterator[tuple[list, list[np.ndarray | CoverError]]]:
    """Yield (paths, decoded) batch by batch, in order; a cover that fails comes as its CoverError.

    The consumer's decode_ahead (export/predict.py), one implementation for the package and
    production: a thread pool decodes up to ``ahead`` batches before the one the caller is on.
    """
    from bookcover.consumer import load_consumer

    return load_consumer().decode_ahead(load, paths, batch_size, workers, ahead, catch=CoverError)
