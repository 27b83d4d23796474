"""export/predict.py as a production tool (issue 11, items 15, 16, 22): folder input, results
streamed batch by batch with error records and expected_level, Ctrl-C in one line, and the same
large-cover handling as training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from bookcover.data import images
from bookcover.data.batches import center_crop
from bookcover.data.images import load_cover
from tests.export.conftest import PREDICT_SCRIPT


@pytest.fixture
def cover_tree(synth_covers, tmp_path):
    """covers/ with two covers, a sub-folder with two more (10.jpg after 2.jpg), a broken one and
    a text file that is not an image."""
    root = tmp_path / "covers"
    (root / "sub").mkdir(parents=True)
    src = sorted((synth_covers / "images").glob("*.jpg"))
    for name, s in (("2.jpg", src[0]), ("10.jpg", src[1]), ("sub/1.jpg", src[2]), ("sub/3.png", src[3])):
        shutil.copyfile(s, root / name)
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "notes.txt").write_text("not a cover")
    return root


def test_images_folder_streams_every_cover_in_order(exported, cover_tree):
    folder, _ = exported
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(folder), "--images", str(cover_tree),
                          "--batch-size", "2", "--cpu"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1  # one cover failed, the rest were predicted
    records = [json.loads(line) for line in res.stdout.splitlines()]
    names = [r["path"].removeprefix(str(cover_tree) + "/") for r in records]
    assert names == ["2.jpg", "10.jpg", "sub/1.jpg", "sub/3.png", "sub/broken.jpg"]
    assert set(records[-1]) == {"path", "error"}
    for r in records[:-1]:
        assert r["expected_level"] == pytest.approx(sum(r["probas"]), abs=1e-6)
        assert r["level"] == sum(p > 0.5 for p in r["probas"])
    lines = res.stderr.strip().splitlines()  # no progress line when stderr is not a terminal
    assert lines == [f"error: {cover_tree}/sub/broken.jpg: {records[-1]['error']}"]


def test_results_stream_before_the_next_batch_runs(consumer, exported, synth_covers, monkeypatch):
    folder, _ = exported
    art = consumer.Artifact.load(folder, threads=1)
    calls = []
    original = art.predict_pixels
    art.predict_pixels = lambda crops, batch_size=64: calls.append(len(crops)) or original(crops, batch_size)
    covers = sorted((synth_covers / "images").glob("*.jpg"))[:5]
    stream = art.iter_predictions(covers, batch_size=2)
    first = next(stream)
    assert first["path"] == str(covers[0]) and calls == [2]  # the first batch is out after one model call
    assert [r["path"] for r in [first, *stream]] == [str(c) for c in covers] and calls == [2, 2, 1]


def test_ctrl_c_is_one_line(consumer, exported, synth_covers, monkeypatch, capsys):
    folder, _ = exported
    covers = [str(p) for p in sorted((synth_covers / "images").glob("*.jpg"))[:4]]

    def interrupted(self, paths, batch_size=64, workers=None):
        yield {"path": paths[0], "level": 0, "expected_level": 0.0, "probas": [], "level_probs": []}
        raise KeyboardInterrupt

    monkeypatch.setattr(consumer.Artifact, "iter_predictions", interrupted)
    assert consumer.main([str(folder), *covers, "--cpu"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "interrupted; 1 covers done\n" and len(captured.out.splitlines()) == 1


def test_nothing_to_predict_is_a_usage_error(exported, tmp_path):
    folder, _ = exported
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(folder)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "nothing to predict" in res.stderr


def test_large_covers_match_training(consumer, tmp_path, monkeypatch):
    y, x = np.mgrid[0:2400, 0:1600]
    Image.fromarray(np.stack([x % 256, y % 256, (x * y) % 256], -1).astype(np.uint8)).save(tmp_path / "l.jpg")
    for resize, crop in (((72, 72), 64), ((128, 128), 120), ((300, 300), 280)):  # 1/8, 1/4 and 1/2 scale
        mine = consumer.preprocess(tmp_path / "l.jpg", list(resize), crop)
        train = center_crop(torch.from_numpy(load_cover(tmp_path / "l.jpg", resize)[None].copy()), crop)[0].numpy()
        np.testing.assert_array_equal(mine, train)
    assert (consumer.MAX_COVER_MEGAPIXELS, consumer.DRAFT_MARGIN, consumer.IMAGE_SUFFIXES) == (
        images.MAX_COVER_MEGAPIXELS, images.DRAFT_MARGIN, images.IMAGE_SUFFIXES)
    monkeypatch.setattr(consumer, "MAX_COVER_MEGAPIXELS", 1.0)
    with pytest.raises(consumer.CoverError, match="too large to decode"):
        consumer.open_rgb(tmp_path / "l.jpg")
    assert consumer.preprocess(tmp_path / "l.jpg", [72, 72], 64).shape == (64, 64, 3)  # drafted: within the limit
