"""Synthetic book covers with a planted, documented popularity rule.

The embedded default dataset: `bookcover-fast train` works on a fresh machine with no download,
and explanations can be scored because we know what drives popularity.

Generative rule (deterministic per seed)
----------------------------------------
Each cover i draws four latent features independently:

* ``badge``    a in {0, 1}, P(a=1) = 0.35: a gold "award badge" disc with a star, in a random
               corner. Its box is saved.
* ``contrast`` c ~ U(0, 1): luminance contrast between the title text and the title band.
* ``emblem``   e in {0, 1}, P(e=1) = 0.5: a large geometric emblem in the middle. Box saved.
* ``harmony``  h ~ U(0, 1): palette harmony; the background gradient's two hues differ by
               (1 - h) * 180 degrees, so h = 1 is a single-hue (harmonious) palette.

The hidden popularity score is

    score = 1.5 a + 1.0 c + 0.6 e + 0.6 h + N(0, 0.3^2)

Everything else (distractor shapes, hues, title words, author line) is random and carries no
signal. Rows of ``book_data.csv`` are sorted by score, most popular first, as in the study's
list; ``book_rating_count`` is a monotone function of the score, so ranking by that column
gives the same order. ``planted.json`` holds, per row, the latent features, the score and the
boxes (x0, y0, x1, y1) in the cover's own pixel coordinates.
"""

from __future__ import annotations

import colorsys
import csv
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from bookcover.data.sources import GOODREADS_CSV
from bookcover.jsonio import dumps_json
from bookcover.outputs import claim, prepare_out_dir, settle

COVER_WIDTH, COVER_HEIGHT = 128, 192
WEIGHTS = {"badge": 1.5, "contrast": 1.0, "emblem": 0.6, "harmony": 0.6}
NOISE_SD = 0.3
PLANTED_FILE = "planted.json"
COMMAND = "data synth"  # the name its output folders are recorded under (bookcover.outputs)

_WORDS = (
    "night garden river silent empire glass winter secret shadow crown storm letters house "
    "ocean paper orchard iron summer lost last golden city forest daughter ashes moon fire "
    "northern quiet machine island burning wild hollow stone distant salt kingdom"
).split()
_GENRES = ["Fiction", "Fantasy", "Romance", "Mystery", "Classics", "Young Adult", "History", "Poetry"]


def latent_features(n: int, seed: int) -> dict[str, np.ndarray]:
    """The planted features and hidden score for n covers."""
    rng = np.random.default_rng([seed, 0])
    feats = {
        "badge": (rng.random(n) < 0.35).astype(np.int64),
        "contrast": rng.random(n),
        "emblem": (rng.random(n) < 0.5).astype(np.int64),
        "harmony": rng.random(n),
    }
    noise = rng.normal(0.0, NOISE_SD, n)
    feats["score"] = sum(WEIGHTS[k] * feats[k] for k in WEIGHTS) + noise
    return feats


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _rgb(hue: float, sat: float, val: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0.0, 1.0, COVER_HEIGHT)[:, None, None]
    rows = (1 - t) * np.asarray(top, float) + t * np.asarray(bottom, float)
    arr = np.broadcast_to(rows, (COVER_HEIGHT, COVER_WIDTH, 3)).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.45
        ang = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
    return pts


def render_cover(features: dict[str, float], rng: np.random.Generator, fonts) -> tuple[Image.Image, dict, str]:
    """Draw one cover; return it, its planted boxes and its title."""
    title_font, small_font = fonts
    hue = rng.random()
    hue2 = hue + (1.0 - features["harmony"]) * 0.5 * rng.choice([-1, 1])
    img = _gradient(_rgb(hue, 0.55, 0.85), _rgb(hue2, 0.6, 0.55))
    draw = ImageDraw.Draw(img)
    boxes: dict[str, list[int]] = {}

    for _ in range(int(rng.integers(2, 5))):  # distractors: no signal
        x0, y0 = rng.integers(0, COVER_WIDTH - 20), rng.integers(50, COVER_HEIGHT - 40)
        w, h = rng.integers(8, 40), rng.integers(4, 30)
        colour = _rgb(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
        if rng.random() < 0.5:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill=colour, width=int(rng.integers(1, 4)))

    if features["emblem"]:
        cx, cy, r = COVER_WIDTH / 2 + rng.uniform(-8, 8), 105 + rng.uniform(-8, 8), rng.uniform(22, 30)
        colour = _rgb(rng.random(), 0.8, 0.95)
        box = [int(cx - r), int(cy - r), int(math.ceil(cx + r)), int(math.ceil(cy + r))]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour, outline=(255, 255, 255), width=3)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour, outline=(255, 255, 255))
        boxes["emblem"] = box

    band_val = rng.uniform(0.35, 0.65)
    band = _rgb(rng.random(), 0.3, band_val)
    draw.rectangle([0, 12, COVER_WIDTH, 52], fill=band)
    delta = features["contrast"] * 0.5 * 255
    base = np.mean(band)
    text_level = int(np.clip(base + delta if rng.random() < 0.5 else base - delta, 0, 255))
    if abs(text_level - base) < delta * 0.9:  # clipped: go the other way
        text_level = int(np.clip(base - delta if text_level > base else base + delta, 0, 255))
    words = rng.choice(_WORDS, size=2, replace=False)
    title = f"The {words[0].title()} {words[1].title()}"
    draw.text((6, 14), f"The {words[0].title()}", fill=(text_level,) * 3, font=title_font)
    draw.text((6, 32), words[1].title(), fill=(text_level,) * 3, font=title_font)
    boxes["title"] = [0, 12, COVER_WIDTH, 52]
    draw.text((6, COVER_HEIGHT - 16), f"A. {rng.choice(_WORDS).title()}", fill=(235, 235, 235), font=small_font)

    if features["badge"]:
        r = 15
        corner = int(rng.integers(4))
        cx = r + 4 if corner in (0, 2) else COVER_WIDTH - r - 4
        cy = r + 56 if corner in (0, 1) else COVER_HEIGHT - r - 20
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(250, 196, 32), outline=(120, 80, 0), width=2)
        draw.polygon(_star(cx, cy, r * 0.7), fill=(255, 250, 220))
        boxes["badge"] = [cx - r, cy - r, cx + r + 1, cy + r + 1]
    return img, boxes, title


def synthesise(out: str | Path, n: int = 5000, seed: int = 0, quiet: bool = False, overwrite: bool = False) -> Path:
    """Write n synthetic covers in the study's layout (book_data.csv + images/<row>.jpg).

    out follows the --out policy (bookcover.outputs): new or empty, or with overwrite a folder
    holding only an earlier synthetic set, as its record lists it (never real covers).
    """
    out = prepare_out_dir(out, COMMAND, overwrite=overwrite)
    written = [GOODREADS_CSV, PLANTED_FILE] + [f"images/{row}.jpg" for row in range(n)]
    claim(out, *written)  # before any is written: a kill leaves them pending, still ours
    (out / "images").mkdir(parents=True, exist_ok=True)
    feats = latent_features(n, seed)
    order = np.argsort(-feats["score"], kind="stable")  # list order: most popular first
    fonts = (_font(15), _font(9))
    planted, rows = [], []
    for row, i in enumerate(tqdm(order, desc="synthesising covers", unit="cover", disable=quiet)):
        f = {k: float(feats[k][i]) for k in ("badge", "contrast", "emblem", "harmony", "score")}
        img, boxes, title = render_cover(f, np.random.default_rng([seed, 1, int(i)]), fonts)
        img.save(out / "images" / f"{row}.jpg", quality=90)
        planted.append({"row": row, "features": {k: f[k] for k in WEIGHTS}, "score": f["score"], "boxes": boxes})
        rows.append(
            {
                "book_title": title,
                "book_rating": f"{3.0 + 0.5 * math.tanh(f['score'] - 1.5) + 0.5:.2f}",
                "book_rating_count": int(round(1000 * math.exp(2.5 * f["score"]))) + (n - row),
                "book_review_count": int(round(60 * math.exp(2.0 * f["score"]))),
                "genres": _GENRES[int(i) % len(_GENRES)],
                "image_url": "",
            }
        )
    with open(out / GOODREADS_CSV, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["book_title"])
        writer.writeheader()
        writer.writerows(rows)
    meta = {
        "generator": "bookcover.data.synth",
        "seed": seed,
        "n": n,
        "image_size": [COVER_WIDTH, COVER_HEIGHT],
        "box_format": "x0,y0,x1,y1 in cover pixels (x1, y1 exclusive)",
        "weights": WEIGHTS,
        "noise_sd": NOISE_SD,
        "covers": planted,
    }
    (out / PLANTED_FILE).write_text(dumps_json(meta))
    settle(out, "images", *written)
    return out


def load_planted(root: str | Path) -> dict:
    """planted.json of a synthetic dataset: features, scores and boxes per row."""
    return json.loads((Path(root) / PLANTED_FILE).read_text())
