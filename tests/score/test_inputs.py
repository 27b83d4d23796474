"""Inputs: a CSV list with relative paths, a Parquet list, a study-layout folder, names with spaces
and non-ASCII characters; bad lists and a used OUT are refused in one line (exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookcover.cli import main
from bookcover.score import ScoreOptions, score_catalogue
from tests.score.conftest import read_rows

ODD = "sub dir/café ünïcødé 封面 1.jpg"


@pytest.fixture
def listed(goodreads_sample, tmp_path) -> tuple[Path, list[str]]:
    """A folder with covers under odd names, and the absolute paths a list of them should give."""
    root = tmp_path / "lists"
    (root / "covers" / "sub dir").mkdir(parents=True)
    for i, name in enumerate([ODD, "plain.jpg", "sub dir/two words.jpg"]):
        shutil.copy(goodreads_sample / "images" / f"{i}.jpg", root / "covers" / name)
    expected = [str(root / "covers" / n) for n in (ODD, "plain.jpg", "sub dir/two words.jpg")]
    return root, expected


def score(artifact: Path, out: Path, **inputs) -> dict[str, dict]:
    score_catalogue(artifact, out, options=ScoreOptions(batch_size=2, shard_rows=2, quiet=True), **inputs)
    return read_rows(out)


def test_csv_with_relative_paths(tiny_artifact, listed, tmp_path):
    root, expected = listed
    (root / "list.csv").write_text(f"path,title\ncovers/{ODD},a\n./covers/plain.jpg,b\n{expected[2]},c\n", encoding="utf-8")
    rows = score(tiny_artifact, tmp_path / "out", manifest=root / "list.csv")
    assert sorted(rows) == sorted(expected)
    assert all(r["error"] is None and 0 <= r["level"] <= 4 for r in rows.values())


def test_parquet_list(tiny_artifact, listed, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, expected = listed
    pq.write_table(pa.table({"id": [1, 2, 3], "path": [f"covers/{ODD}", "covers/plain.jpg", "covers/missing.jpg"]}),
                   root / "list.parquet")
    rows = score(tiny_artifact, tmp_path / "out", manifest=root / "list.parquet")
    assert sorted(rows) == sorted(expected[:2] + [str(root / "covers" / "missing.jpg")])
    assert rows[str(root / "covers" / "missing.jpg")]["error"] == "no such file"


def test_folder_recursive_and_study_layout(tiny_artifact, listed, goodreads_sample, tmp_path):
    root, expected = listed
    assert sorted(score(tiny_artifact, tmp_path / "a", images=root / "covers")) == sorted(expected)
    study = tmp_path / "study"
    (study / "images").mkdir(parents=True)
    lines = (goodreads_sample / "book_data.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (study / "book_data.csv").write_text("".join(lines[:5]), encoding="utf-8")  # header + rows 0..3
    for i in range(3):  # images/3.jpg is missing: an error row, not a crash
        (study / "images" / f"{i}.jpg").symlink_to(goodreads_sample / "images" / f"{i}.jpg")
    rows = score(tiny_artifact, tmp_path / "b", images=study)
    assert sorted(Path(p).name for p in rows) == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert [Path(p).name for p, r in rows.items() if r["error"]] == ["3.jpg"]


@pytest.mark.parametrize("content, message", [
    ("file,score\na.jpg,1\n", "missing column(s) path"),
    ("path\n../../etc/passwd\n", "escapes the list's folder"),
    ("path\n", "no rows"),
])
def test_bad_lists_exit_2(tiny_artifact, tmp_path, content, message):
    listing = tmp_path / "list.csv"
    listing.write_text(content)
    res = CliRunner().invoke(main, ["score", "--artifact", str(tiny_artifact), "--manifest", str(listing),
                                    "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out").exists()


def test_used_out_is_refused_without_resume(tiny_artifact, listed, tmp_path):
    root, _ = listed
    out = tmp_path / "out"
    args = ["score", "--artifact", str(tiny_artifact), "--images", str(root / "covers"), "--out", str(out), "--quiet"]
    assert CliRunner().invoke(main, args).exit_code == 0
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "already holds files" in res.output and "--resume" in res.output
    res = CliRunner().invoke(main, args + ["--resume"])
    assert res.exit_code == 0 and res.output.startswith("scored 0 covers"), res.output
    (out / "mine.txt").write_text("the user's")
    res = CliRunner().invoke(main, args + ["--resume"])
    assert res.exit_code == 2 and "holds other files" in res.output
    assert (out / "mine.txt").read_text() == "the user's"
