"""Run plumbing: folder listing order and unique output names."""

from __future__ import annotations

import json
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


def test_covers_sharing_a_name_are_recorded_by_their_source_path(tmp_path):
    """Two covers named 0.jpg in different folders: each output's JSON and the report name its source."""
    from PIL import Image

    from bookcover.explain.prepare import ExplainOptions
    from bookcover.explain.run import explain_covers
    from tests.explain.helpers import cover, tiny_model

    paths = []
    for folder, seed in (("a", 1), ("b/c", 2)):
        (tmp_path / folder).mkdir(parents=True)
        Image.fromarray(cover(96, seed=seed)).save(tmp_path / folder / "0.jpg")
        paths.append(tmp_path / folder / "0.jpg")
    out = tmp_path / "out"
    explain_covers(tiny_model(), paths, out, ExplainOptions(samples=20, segment_size=None), quiet=True)
    records = [json.loads((out / f"{stem}.weights.json").read_text()) for stem in ("0", "0-2")]
    assert [r["source"] for r in records] == [str(p) for p in paths]
    assert [r["output"] for r in records] == ["0", "0-2"] and records[0]["cover"] == "0.jpg"
    report = (out / "report.md").read_text()
    assert f"| 0 | `{paths[0]}` |" in report and f"| 0-2 | `{paths[1]}` |" in report
