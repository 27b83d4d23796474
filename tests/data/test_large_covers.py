"""Large covers (issue 11, items 12 and 22): refused from the header above the documented limit,
said for what they are, no Pillow warning on stderr; large JPEGs decoded at a reduced scale."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from bookcover.data import images
from bookcover.data.images import MAX_COVER_MEGAPIXELS, load_cover, open_rgb
from bookcover.errors import CoverError

REPO = Path(__file__).resolve().parents[2]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height but holds one tiny IDAT: the header alone says how big
    it is, so the size checks must fire before any decoding (and cost no memory here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_cover_over_the_limit_is_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(path)
    monkeypatch.setattr(images, "MAX_COVER_MEGAPIXELS", 0.05)  # 300 x 200 = 0.06 MP
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1))
    with pytest.raises(CoverError, match=r"big.png: image too large to decode \(300 x 200 = 0.1 megapixels; the limit is 0.05\)"):
        load_cover(path, (32, 32))
    assert decoded == []  # refused before any pixel was decoded


def test_header_above_pillows_bomb_limit_is_called_too_large_not_corrupt(tmp_path):
    path = png_header_only(tmp_path / "bomb.png", 20_000, 20_000)  # 400 MP: Pillow raises at open
    with pytest.raises(CoverError) as info:
        open_rgb(path)
    message = str(info.value)
    assert "too large" in message and "decompression bomb" in message and "400 megapixels" in message
    assert "corrupt" not in message and "\n" not in message


def test_between_the_limits_no_pillow_warning_leaks(tmp_path):
    """100 MP: above Pillow's warning threshold (89 MP) and our 40 MP limit. The CLI prints one
    line, not Pillow's two-line DecompressionBombWarning."""
    assert MAX_COVER_MEGAPIXELS == 40
    path = png_header_only(tmp_path / "huge.png", 10_000, 10_000)
    code = ("import sys; from bookcover.data.images import load_cover\n"
            "try:\n    load_cover(sys.argv[1], (32, 32))\nexcept Exception as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert res.stderr == ""
    assert res.stdout.strip() == (f"{path}: image too large to decode (10000 x 10000 = 100 megapixels; the limit is 40): "
                                  "scale it down first")


def _photo(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    return Image.fromarray(arr)


def test_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    path = tmp_path / "large.jpg"
    _photo(1600, 2400).save(path, quality=92)
    drafted = open_rgb(path, (72, 72))
    assert drafted.size == (200, 300)  # 1/8: still at least twice the 72 px target on both sides
    assert open_rgb(path, (300, 300)).size == (800, 1200)  # 1/2 for a larger target
    assert open_rgb(path).size == (1600, 2400)  # no target: full decode
    small = load_cover(path, (72, 72)).astype(int)
    full = np.asarray(open_rgb(path).resize((72, 72), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(small - full).mean() < 2.0  # the same picture at the model's size


def test_a_jpeg_too_large_in_full_passes_when_drafted(tmp_path, monkeypatch):
    path = tmp_path / "large.jpg"
    _photo(1600, 2400).save(path, quality=80)  # 3.84 MP in full, 0.06 MP at 1/8
    monkeypatch.setattr(images, "MAX_COVER_MEGAPIXELS", 1.0)
    assert load_cover(path, (72, 72)).shape == (72, 72, 3)
    with pytest.raises(CoverError, match="too large"):
        load_cover(path)
