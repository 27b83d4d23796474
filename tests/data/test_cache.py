"""The decode-once cache: built once, reused, rebuilt on change, unreadable covers listed."""

import shutil

import numpy as np

from bookcover.data.cache import build_cache
from bookcover.data.dataset import prepare_dataset
from bookcover.data.images import load_cover
from bookcover.data.sources import read_dataset


def _copy(src, dst, n=30):
    (dst / "images").mkdir(parents=True)
    lines = (src / "book_data.csv").read_text().splitlines()
    (dst / "book_data.csv").write_text("\n".join(lines[: n + 1]) + "\n")
    for i in range(n):
        shutil.copy(src / "images" / f"{i}.jpg", dst / "images" / f"{i}.jpg")
    return dst


def test_cache_matches_direct_decoding_and_is_reused(synth_covers, tmp_path):
    data = _copy(synth_covers, tmp_path / "d")
    manifest = read_dataset(data)
    first = build_cache(manifest, (48, 40), cache_root=tmp_path / "c", workers=2, quiet=True)
    assert first.build_seconds is not None and first.images.shape == (30, 48, 40, 3)
    np.testing.assert_array_equal(first.images[7], load_cover(data / "images/7.jpg", (48, 40)))
    again = build_cache(manifest, (48, 40), cache_root=tmp_path / "c", quiet=True)
    assert again.build_seconds is None and again.directory == first.directory


def test_changed_source_rebuilds(synth_covers, tmp_path):
    data = _copy(synth_covers, tmp_path / "d")
    first = build_cache(read_dataset(data), (16, 16), cache_root=tmp_path / "c", quiet=True)
    shutil.copy(data / "images/1.jpg", data / "images/0.jpg")
    second = build_cache(read_dataset(data), (16, 16), cache_root=tmp_path / "c", quiet=True)
    assert second.directory != first.directory
    np.testing.assert_array_equal(second.images[0], second.images[1])


def test_unreadable_covers_are_skipped_and_listed(synth_covers, tmp_path):
    data = _copy(synth_covers, tmp_path / "d")
    (data / "images/3.jpg").write_bytes(b"")
    (data / "images/4.jpg").write_text("not a jpeg")
    (data / "images/5.jpg").unlink()
    ds = prepare_dataset(data, size=(16, 16), cache_root=tmp_path / "c", quiet=True)
    reasons = dict(ds.cache.skipped)
    assert set(reasons) == {"images/3.jpg", "images/4.jpg", "images/5.jpg"}
    assert "empty" in reasons["images/3.jpg"] and "not an image" in reasons["images/4.jpg"]
    assert len(ds) == 25  # 27 readable, remainder of 2 dropped for 5 equal levels
    ds.write_skipped(tmp_path / "skipped.csv")
    assert (tmp_path / "skipped.csv").read_text().count("\n") == 4


def test_a_reused_cache_takes_the_scores_asked_for_now(synth_covers, tmp_path):
    # The cache is keyed on the cover files; ranking the same covers by a column must not
    # reuse the list-order scores stored by the first build.
    data = _copy(synth_covers, tmp_path / "d")
    lines = (data / "book_data.csv").read_text().splitlines()
    rows = [lines[0] + ",reversed"] + [f"{line},{i}" for i, line in enumerate(lines[1:])]
    (data / "book_data.csv").write_text("\n".join(rows) + "\n")
    by_order = prepare_dataset(data, size=(16, 16), cache_root=tmp_path / "c", quiet=True)
    by_column = prepare_dataset(data, size=(16, 16), score_column="reversed", cache_root=tmp_path / "c", quiet=True)
    assert by_column.cache.directory == by_order.cache.directory  # the same decoded covers
    np.testing.assert_array_equal(by_column.labels, 4 - by_order.labels)  # the ranking really reversed


def test_given_levels_and_a_train_fraction(synth_covers, tmp_path):
    from bookcover.data.dataset import prepare_given_levels

    data = _copy(synth_covers, tmp_path / "d")
    lines = (data / "book_data.csv").read_text().splitlines()
    rows = [lines[0] + ",level"] + [f"{line},{i % 2}" for i, line in enumerate(lines[1:])]
    (data / "book_data.csv").write_text("\n".join(rows) + "\n")
    covers = prepare_given_levels(data, "level", size=(16, 16), cache_root=tmp_path / "c", quiet=True)
    assert covers.labels.tolist() == [i % 2 for i in range(30)]
    rows = ["path,score,level"] + [f"images/{i}.jpg,{i},{(i + 1) % 2}" for i in range(30)]
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    from_manifest = prepare_given_levels(data / "manifest.csv", "level", size=(16, 16), cache_root=tmp_path / "c",
                                         quiet=True)
    assert from_manifest.labels.tolist() == [(i + 1) % 2 for i in range(30)]
    half = covers.keep_train_fraction(0.5, seed=0)
    assert half.select("train").size == round(covers.select("train").size / 2)
    np.testing.assert_array_equal(half.select("test"), covers.select("test"))
    assert half.summary()["split"]["train"] == half.select("train").size


def test_data_cache_preset_builds_the_cache_train_reuses(synth_covers, tmp_path, monkeypatch):
    """`data cache --preset quick` decodes at the quick preset's 72 px (and its cover subset), the
    cache `train --preset quick` then reuses; the default stays the paper preset's 128 px."""
    from click.testing import CliRunner

    from bookcover.classifier.config import preset
    from bookcover.cli import main
    from bookcover.data.dataset import load_labelled

    data = _copy(synth_covers, tmp_path / "d", n=40)
    monkeypatch.setenv("BOOKCOVER_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(main, ["data", "cache", "--data", str(data), "--preset", "quick", "--quiet"])
    assert res.exit_code == 0, res.output
    built = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(built) == 1 and built[0].startswith("covers-72x72-")
    reused = load_labelled(preset("quick", data=str(data)), quiet=True)
    assert reused.cache.build_seconds is None and reused.cache.directory.name == built[0]
    res = CliRunner().invoke(main, ["data", "cache", "--data", str(data), "--quiet"])
    assert res.exit_code == 0 and any(p.name.startswith("covers-128x128-") for p in (tmp_path / "cache").iterdir())


def test_cache_list_and_clean_touch_only_their_own_entries(synth_covers, tmp_path, monkeypatch):
    import os
    import time

    from click.testing import CliRunner

    from bookcover.cli import main
    from bookcover.data.cache import cache_entries

    root = tmp_path / "cache"
    monkeypatch.setenv("BOOKCOVER_CACHE", str(root))
    data = _copy(synth_covers, tmp_path / "d", n=12)
    build_cache(read_dataset(data), (16, 16), cache_root=root, quiet=True)
    synthetic = root / "synthetic-n12-seed3"
    shutil.copytree(data, synthetic)
    (synthetic / "planted.json").write_text("{}")
    old, fresh = root / ".building-abc123", root / ".synth-xyz789"
    for partial in (old, fresh):
        partial.mkdir()
        (partial / "staging.npy").write_bytes(b"x" * 100)
    hour_ago = time.time() - 7200
    os.utime(old / "staging.npy", (hour_ago, hour_ago))
    os.utime(old, (hour_ago, hour_ago))
    # Not ours: a user's file, a folder that only looks like an entry, and one with a foreign name.
    (root / "notes.txt").write_text("mine")
    (root / "covers-16x16-000000000000000000000000").mkdir()  # no index.json
    (root / "my-covers").mkdir()

    kinds = sorted(e.kind for e in cache_entries(root))
    assert kinds == ["covers", "partial", "partial", "synthetic"]
    listed = CliRunner().invoke(main, ["cache", "list"])
    assert listed.exit_code == 0 and "12 covers decoded at 16x16 px" in listed.output
    assert "12 synthetic covers, seed 3" in listed.output and "4 entries" in listed.output

    cleaned = CliRunner().invoke(main, ["cache", "clean"])
    assert cleaned.exit_code == 0 and "removed 3 entries" in cleaned.output and "kept .synth-xyz789" in cleaned.output
    assert sorted(p.name for p in root.iterdir()) == [
        ".synth-xyz789", "covers-16x16-000000000000000000000000", "my-covers", "notes.txt"]
    assert (root / "notes.txt").read_text() == "mine"
