"""Run plumbing: folder listing order and unique output names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookcover.data.images import find_images
from bookcover.errors import BookcoverError
from bookcover.explain.run import output_stem


def test_explain_lists_images_in_natural_order(tmp_path):
    """explain --images lists covers with find_images, as predict --images does."""
    for name in ("10.jpg", "2.jpg", "b.png", "notes.txt", "a.JPG"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_images(tmp_path)] == ["2.jpg", "10.jpg", "a.JPG", "b.png"]
    with pytest.raises(BookcoverError, match="not a folder"):
        find_images(tmp_path / "missing")


def test_output_stems_are_unique():
    used: set[str] = set()
    assert [output_stem(Path(p), used) for p in ("a/0.jpg", "b/0.jpg", "c/0.png", "1.jpg")] == ["0", "0-2", "0-3", "1"]
