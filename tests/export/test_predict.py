"""export/predict.py: the torch-free consumer agrees with bookcover-fast predict, and refuses
tampered artifacts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bookcover.classifier.predict import load_classifier, predict_files
from bookcover.data.batches import center_crop
from bookcover.data.images import load_cover
from bookcover.errors import CoverError
from tests.export.conftest import PREDICT_SCRIPT


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory) -> dict[str, str]:
    """An environment where `import torch` and `import bookcover` raise ImportError."""
    shim = tmp_path_factory.mktemp("no-torch")
    for name in ("torch", "bookcover", "torchvision"):
        (shim / f"{name}.py").write_text(f"raise ImportError('{name} is not installed in production')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(shim)
    return env


def _covers(synth_covers, n=12):
    return sorted((synth_covers / "images").glob("*.jpg"))[:n]


def test_shim_really_blocks_torch(no_torch_env):
    res = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env, capture_output=True, text=True)
    assert res.returncode != 0 and "not installed in production" in res.stderr


def test_consumer_without_torch_agrees_with_predict(exported, tiny_run, synth_covers, no_torch_env, tmp_path):
    folder, _ = exported
    covers = _covers(synth_covers)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(covers[0].read_bytes()[:200])  # a truncated JPEG
    args = [str(covers[0]), str(corrupt), *map(str, covers[1:])]
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(folder), *args, "--batch-size", "5", "--cpu"],
                         env=no_torch_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 1 and str(corrupt) in errors[0] and errors[0].startswith("error:")
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["path"] for r in records] == args  # every cover, in order, the unreadable one included
    assert set(records[1]) == {"path", "error"} and records[1]["error"].startswith("corrupt or truncated")
    got = [r for r in records if "error" not in r]
    expected = [r for r in predict_files(load_classifier(tiny_run / "best.pt", "cpu"), args) if "error" not in r]
    assert [g["path"] for g in got] == [e["path"] for e in expected] and len(got) == len(covers)
    assert [g["level"] for g in got] == [e["level"] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert set(g) == {"path", "level", "expected_level", "probas", "level_probs"}
        np.testing.assert_allclose(g["probas"], e["probas"], atol=1e-4, rtol=0)
        np.testing.assert_allclose(g["level_probs"], e["level_probs"], atol=1e-4, rtol=0)
        assert g["expected_level"] == pytest.approx(sum(g["probas"]), abs=1e-6)
        assert g["expected_level"] == pytest.approx(e["expected_level"], abs=4e-4)


def _odd_covers(folder):
    """Covers in every mode training converts, at awkward sizes, so resize and crop matter."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (97, 61, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (50, 80, 4), dtype=np.uint8), "RGBA")
    pal_t = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal_t.info["transparency"] = 3
    i16 = Image.fromarray(rng.integers(0, 4000, (40, 30), dtype=np.uint16))
    made = {
        "rgb.jpg": (rgb, "JPEG"), "gray.jpg": (rgb.convert("L"), "JPEG"), "cmyk.jpg": (rgb.convert("CMYK"), "JPEG"),
        "rgba.png": (rgba, "PNG"), "la.png": (rgba.convert("LA"), "PNG"), "pal.png": (rgb.convert("P"), "PNG"),
        "pal_t.png": (pal_t, "PNG"), "i16.png": (i16, "PNG"), "bw.png": (rgb.convert("1"), "PNG"),
    }
    paths = []
    for name, (img, fmt) in made.items():
        img.save(folder / name, fmt)
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize("resize,crop", [((36, 36), 32), ((72, 72), 64), ((128, 128), 120), ((72, 72), 63)])
def test_preprocessing_matches_training_eval_crop(consumer, tmp_path, synth_covers, resize, crop):
    paths = _odd_covers(tmp_path) + _covers(synth_covers, 3)
    for path in paths:
        mine = consumer.preprocess(path, list(resize), crop)
        train = center_crop(torch.from_numpy(load_cover(path, resize)[None].copy()), crop)[0].numpy()
        assert mine.dtype == np.uint8 and mine.shape == (crop, crop, 3)
        np.testing.assert_array_equal(mine, train, err_msg=str(path))


def _goodreads_sample() -> Path:
    """The shared real covers, looked up above the checkout (a git worktree sits deeper)."""
    for parent in Path(__file__).resolve().parents:
        found = parent / "shared" / "data" / "goodreads-sample"
        if (found / "book_data.csv").is_file():
            return found
    pytest.skip("shared/data/goodreads-sample is not present")


def test_preprocessing_matches_on_real_covers(consumer):
    paths = sorted((_goodreads_sample() / "images").glob("*.jpg"))[:25]
    assert paths
    for path in paths:
        try:
            full = load_cover(path, (128, 128))
        except CoverError as exc:  # a corrupt real cover: the consumer must reject it the same way
            with pytest.raises(consumer.CoverError, match="corrupt|not an image|empty"):
                consumer.preprocess(path, [128, 128], 120)
            assert str(path) in str(exc)
            continue
        mine = consumer.preprocess(path, [128, 128], 120)
        train = center_crop(torch.from_numpy(full[None].copy()), 120)[0].numpy()
        np.testing.assert_array_equal(mine, train, err_msg=str(path))


def _copy(folder, dest):
    shutil.copytree(folder, dest)
    return dest


def test_tampered_model_is_refused(consumer, exported, tmp_path, synth_covers):
    folder, _ = exported
    bad = _copy(folder, tmp_path / "tampered")
    data = bytearray((bad / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in a weight
    (bad / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(consumer.ArtifactError, match="sha256 differs"):
        consumer.Artifact.load(bad)
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(bad), str(_covers(synth_covers, 1)[0])],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to load" in lines[0] and "model.onnx" in lines[0]


def test_truncated_or_unlisted_model_is_refused(consumer, exported, tmp_path):
    folder, _ = exported
    short = _copy(folder, tmp_path / "short")
    with open(short / "model.fp16.onnx", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(consumer.ArtifactError, match="size 1000 differs"):
        consumer.Artifact.load(short, "model.onnx")  # every listed file is checked, not just the one used
    unlisted = _copy(folder, tmp_path / "unlisted")
    shutil.copyfile(unlisted / "model.onnx", unlisted / "other.onnx")
    with pytest.raises(consumer.ArtifactError, match="not listed"):
        consumer.Artifact.load(unlisted, "other.onnx")
    (unlisted / "manifest.json").unlink()
    with pytest.raises(consumer.ArtifactError, match="no manifest.json"):
        consumer.Artifact.load(unlisted)


def test_library_use_and_fp16_variant(consumer, exported, tiny_run, synth_covers):
    folder, _ = exported
    covers = _covers(synth_covers, 8)
    art = consumer.Artifact.load(folder, threads=1)
    assert art.providers[-1] == "CPUExecutionProvider"
    assert art.metadata["bookcover.levels"] == 5
    fp32 = art.predict_files(covers, batch_size=3)
    half = consumer.Artifact.load(folder, "model.fp16.onnx").predict_files(covers)
    for a, b in zip(fp32, half, strict=True):
        np.testing.assert_allclose(a["probas"], b["probas"], atol=1e-2)
    empty = art.predict_pixels(np.zeros((0, 32, 32, 3), np.uint8))
    assert empty["probas"].shape == (0, 4) and empty["rank"].dtype == np.int64
    with pytest.raises(ValueError, match="uint8"):
        art.predict_pixels(np.zeros((1, 32, 32, 3), np.float32))
