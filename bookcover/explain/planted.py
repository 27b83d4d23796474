"""Synthetic covers' planted ground truth, and the same cover re-rendered without its badge.

Torch-free, so that the workers that segment upcoming covers can also re-render them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from bookcover.data.images import open_rgb, resize_cover
from bookcover.data.synth import PLANTED_FILE, _font, latent_features, render_cover

JPEG_QUALITY = 90  # what synthesise() saves covers with


@dataclass(frozen=True)
class PlantedCover:
    root: Path
    row: int
    badge_box: tuple[int, int, int, int] | None  # cover pixels, x1/y1 exclusive


@lru_cache(maxsize=8)
def _planted(root: str) -> dict:
    return json.loads((Path(root) / PLANTED_FILE).read_text())


def planted_cover(path: str | Path) -> PlantedCover | None:
    """The planted ground truth of ``<root>/images/<row>.jpg`` when <root> is a synthetic set."""
    p = Path(path).resolve()
    root = p.parent.parent
    if p.parent.name != "images" or not p.stem.isdigit() or not (root / PLANTED_FILE).is_file():
        return None
    covers = _planted(str(root))["covers"]
    row = int(p.stem)
    if row >= len(covers):
        return None
    box = covers[row]["boxes"].get("badge")
    return PlantedCover(root, row, tuple(box) if box else None)


def render_without_badge(cover: PlantedCover, size: tuple[int, int], badge: bool = False) -> np.ndarray:
    """Re-render a synthetic cover with (or without) its badge, JPEG'd and resized like the original."""
    meta = _planted(str(cover.root))
    feats = latent_features(meta["n"], meta["seed"])
    index = int(np.argsort(-feats["score"], kind="stable")[cover.row])
    f = {k: float(feats[k][index]) for k in ("badge", "contrast", "emblem", "harmony", "score")}
    f["badge"] = 1.0 if badge else 0.0
    img, _, _ = render_cover(f, np.random.default_rng([meta["seed"], 1, index]), (_font(15), _font(9)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    with Image.open(io.BytesIO(buf.getvalue())) as decoded:
        decoded.load()
        return np.asarray(resize_cover(decoded.convert("RGB"), size), dtype=np.uint8)


def badge_pair(path: str | Path, cover: PlantedCover, size: tuple[int, int]) -> np.ndarray:
    """uint8 (2, H, W, 3): the cover as the model sees it, and the same cover without its badge.

    CPU work only (decode, re-render, resize), so the explain pipeline builds it in its workers.
    """
    original = np.asarray(resize_cover(open_rgb(path), size), dtype=np.uint8)
    return np.stack([original, render_without_badge(cover, size)])
