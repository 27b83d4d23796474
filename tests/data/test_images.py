"""Cover decoding: odd modes are converted, broken files give a one-line CoverError."""

import io

import numpy as np
import pytest
from PIL import Image

from bookcover.data.images import load_cover
from bookcover.errors import CoverError


def _save(img: Image.Image, path, fmt="JPEG"):
    img.save(path, fmt)
    return path


@pytest.mark.parametrize(
    "mode,fmt",
    [("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("P", "PNG"), ("LA", "PNG"), ("I;16", "PNG"), ("1", "PNG")],
)
def test_odd_modes_become_rgb(tmp_path, mode, fmt):
    img = Image.new("RGB", (40, 60), (200, 30, 90)).convert(mode)
    path = _save(img, tmp_path / f"c.{fmt.lower()}", fmt)
    arr = load_cover(path, (32, 32))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    arr = load_cover(_save(img, tmp_path / "t.png", "PNG"))
    assert (arr == 255).all()


def test_cmyk_colours_survive(tmp_path):
    img = Image.new("RGB", (16, 16), (250, 10, 10)).convert("CMYK")
    arr = load_cover(_save(img, tmp_path / "c.jpg"))
    assert arr[..., 0].mean() > 200 and arr[..., 1].mean() < 60


def test_empty_file(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(CoverError, match="empty"):
        load_cover(tmp_path / "e.jpg")


def test_not_an_image(tmp_path):
    (tmp_path / "n.jpg").write_text("this is a text file, not a cover")
    with pytest.raises(CoverError, match="not an image"):
        load_cover(tmp_path / "n.jpg")


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(CoverError, match="truncated"):
        load_cover(tmp_path / "t.jpg")


def test_corrupt_bytes_after_header(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[40:80] = b"\x00" * 40
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(CoverError):
        load_cover(tmp_path / "c.png")


def test_missing_file(tmp_path):
    with pytest.raises(CoverError, match="no such file"):
        load_cover(tmp_path / "absent.jpg")


def test_error_is_one_line(tmp_path):
    (tmp_path / "n.jpg").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(CoverError) as info:
        load_cover(tmp_path / "n.jpg")
    assert "\n" not in str(info.value)
