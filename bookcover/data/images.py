"""Decode one cover into RGB uint8, whatever its mode, or say in one line why it cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bookcover.errors import CoverError

# Covers are resized to a square, as the study's torchvision Resize((128, 128)) did.
RESIZE_FILTER = Image.Resampling.BILINEAR


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open a cover as an RGB PIL image.

    Grayscale, palette, CMYK and 16-bit covers are converted; transparent ones are composited
    on white (a cover's paper). Corrupt, truncated, empty or non-image files raise CoverError.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CoverError(f"{path}: empty file")
        with Image.open(path) as img:
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
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CoverError(f"{path}: corrupt or truncated image ({exc})") from None


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
    img = open_rgb(path)
    if size is not None:
        img = resize_cover(img, size)
    return np.asarray(img, dtype=np.uint8)


def resize_cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (height, width), ignoring aspect ratio as the study did."""
    height, width = size
    if img.size == (width, height):
        return img
    return img.resize((width, height), RESIZE_FILTER)
