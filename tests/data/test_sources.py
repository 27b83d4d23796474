"""Reading the study's layout and generic manifests; refusing paths outside the data root."""

import pytest

from bookcover.data.sources import read_dataset, read_goodreads, read_manifest
from bookcover.errors import DataError


def _goodreads(tmp_path, rows="book_title,book_rating_count\nA,5\nB,50\nC,\n"):
    (tmp_path / "book_data.csv").write_text(rows)
    return tmp_path


def test_list_order_is_the_default(tmp_path):
    m = read_goodreads(_goodreads(tmp_path))
    assert m.paths == ["images/0.jpg", "images/1.jpg", "images/2.jpg"]
    assert list(m.scores) == sorted(m.scores, reverse=True)


def test_score_column_ranks_descending_and_skips_missing(tmp_path):
    m = read_goodreads(_goodreads(tmp_path), "book_rating_count")
    assert m.paths == ["images/0.jpg", "images/1.jpg"] and list(m.scores) == [5.0, 50.0]
    assert m.skipped == [("images/2.jpg", "missing or non-numeric book_rating_count")]


def test_missing_columns_are_named(tmp_path):
    _goodreads(tmp_path, "title,count\nA,1\n")
    with pytest.raises(DataError, match="missing column.*book_title"):
        read_dataset(tmp_path)
    _goodreads(tmp_path, "book_title\nA\n")
    with pytest.raises(DataError, match="book_rating_count"):
        read_dataset(tmp_path, "book_rating_count")


def test_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("path,score\na/x.jpg,3\nb.jpg,1.5\n")
    m = read_dataset(tmp_path / "m.csv")
    assert m.paths == ["a/x.jpg", "b.jpg"] and m.root == tmp_path.resolve()


@pytest.mark.parametrize("bad", ["../secret.jpg", "a/../../x.jpg", "/etc/passwd"])
def test_manifest_paths_cannot_escape_root(tmp_path, bad):
    (tmp_path / "m.csv").write_text(f"path,score\n{bad},1\n")
    with pytest.raises(DataError, match="escapes|absolute"):
        read_manifest(tmp_path / "m.csv")


def test_symlink_escape_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    (root / "m.csv").write_text("path,score\nlink/x.jpg,1\n")
    with pytest.raises(DataError, match="escapes"):
        read_manifest(root / "m.csv")


def test_manifest_missing_columns(tmp_path):
    (tmp_path / "m.csv").write_text("path,popularity\nx.jpg,1\n")
    with pytest.raises(DataError, match="score"):
        read_manifest(tmp_path / "m.csv")


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such"):
        read_dataset(tmp_path / "nope")
