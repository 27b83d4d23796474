"""`bookcover-fast predict` (issue 11, items 15, 16, 21): folder input, streamed results with
error records and expected_level, a progress bar that --quiet silences, Ctrl-C in one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import bookcover.classifier.predict as predict_module
from bookcover.classifier import iter_predictions, load_classifier
from bookcover.cli import main


@pytest.fixture
def cover_tree(synth_covers, tmp_path):
    root = tmp_path / "covers"
    (root / "b").mkdir(parents=True)
    src = sorted((synth_covers / "images").glob("*.jpg"))
    for name, s in (("10.jpg", src[0]), ("9.jpg", src[1]), ("b/1.JPG", src[2]), ("b/2.png", src[3])):
        shutil.copyfile(s, root / name)
    (root / "b" / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    (root / "readme.txt").write_text("not an image")
    return root


def _predict(tiny_run, *args):
    return CliRunner().invoke(main, ["predict", "--checkpoint", str(tiny_run / "best.pt"), *args])


def test_images_folder_json_stream_with_error_records(tiny_run, cover_tree):
    res = _predict(tiny_run, "--images", str(cover_tree), "--json", "--batch-size", "2", "--quiet")
    assert res.exit_code == 1  # one cover failed, the others were predicted
    records = [json.loads(line) for line in res.stdout.splitlines()]
    names = [r["path"].removeprefix(str(cover_tree) + "/") for r in records]
    assert names == ["9.jpg", "10.jpg", "b/1.JPG", "b/2.png", "b/bad.jpg"]  # recursive, natural order
    assert set(records[-1]) == {"path", "error"} and "\n" not in records[-1]["error"]
    for r in records[:-1]:
        assert set(r) == {"path", "level", "expected_level", "probas", "level_probs"}
        assert r["expected_level"] == pytest.approx(sum(r["probas"]), abs=1e-9)
        assert r["level"] == sum(p > 0.5 for p in r["probas"])  # CORAL's rank, not argmax(level_probs)
    assert res.stderr == f"error: {cover_tree}/b/bad.jpg: {records[-1]['error']}\n"


def test_progress_bar_unless_quiet(tiny_run, synth_covers):
    cover = str(synth_covers / "images" / "0.jpg")
    loud = _predict(tiny_run, cover)
    assert loud.exit_code == 0 and "predicting" in loud.stderr and "expected" in loud.stdout
    quiet = _predict(tiny_run, cover, "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_results_are_yielded_batch_by_batch(tiny_run, synth_covers, monkeypatch):
    clf = load_classifier(tiny_run / "best.pt", "cpu")
    calls = []
    original = predict_module.predict_pixels
    monkeypatch.setattr(predict_module, "predict_pixels", lambda *a, **k: calls.append(len(a[1])) or original(*a, **k))
    covers = sorted((synth_covers / "images").glob("*.jpg"))[:5]
    stream = iter_predictions(clf, covers, batch_size=2)
    first = next(stream)
    assert first["path"] == str(covers[0]) and calls == [2]  # out before the next batch runs
    rest = list(stream)
    assert calls == [2, 2, 1] and [r["path"] for r in [first, *rest]] == [str(c) for c in covers]
    whole = predict_module.predict_pixels(clf.model, np.stack([predict_module.load_cover(c, clf.image_size)
                                                                for c in covers]), clf.config.crop)
    # Batches of 2, 2, 1 against one of 5: fp32 convolutions may pick another algorithm per batch size.
    np.testing.assert_allclose([r["probas"] for r in [first, *rest]], whole["probas"], atol=1e-5)


def test_ctrl_c_says_how_many_covers_were_done(tiny_run, synth_covers, monkeypatch):
    def interrupted(clf, paths, batch_size=64, workers=None):
        for p in paths[:2]:
            yield {"path": str(p), "level": 1, "expected_level": 1.0, "probas": [0.6, 0.4, 0.3, 0.2],
                   "level_probs": [0.4, 0.2, 0.1, 0.1, 0.2]}
        raise KeyboardInterrupt

    import bookcover.classifier

    monkeypatch.setattr(bookcover.classifier, "iter_predictions", interrupted)
    covers = [str(p) for p in sorted((synth_covers / "images").glob("*.jpg"))[:5]]
    res = _predict(tiny_run, *covers, "--json", "--quiet")
    assert res.exit_code == 130
    assert res.stderr == "interrupted; 2 covers done\n" and len(res.stdout.splitlines()) == 2


def test_usage_errors_exit_2(tiny_run, tmp_path):
    res = _predict(tiny_run)
    assert res.exit_code == 2 and "nothing to predict" in res.output
    res = _predict(tiny_run, "--images", str(tmp_path / "missing"))
    assert res.exit_code == 2 and "does not exist" in res.output


def test_help_documents_the_schema_and_flags():
    from bookcover.data.images import MAX_COVER_MEGAPIXELS

    out = " ".join(CliRunner().invoke(main, ["predict", "--help"]).output.split())
    for needle in ("--images", "--quiet", "--device", "cpu, cuda", "argmax(level_probs)", "expected_level",
                   "Exit codes", "1 some covers failed", f"over {MAX_COVER_MEGAPIXELS:g} megapixels"):
        assert needle in out, needle
