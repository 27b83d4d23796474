"""Artifact verification on every path that loads one (issue 11, items 8 and 9): one verifier
(export/predict.py's Artifact.load) for predict.py and `explain --onnx`; a pinned sha256 catches
what the manifest cannot, a model edited with its manifest rewritten to match."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from bookcover.cli import main
from bookcover.errors import ArtifactError
from bookcover.explain.adapters import OnnxModel
from bookcover.export import sha256_file, write_manifest
from tests.export.conftest import PREDICT_SCRIPT


def _covers(synth_covers, n=4):
    return sorted((synth_covers / "images").glob("*.jpg"))[:n]


def _flipped(folder, dest):
    shutil.copytree(folder, dest)
    data = bytearray((dest / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (dest / "model.onnx").write_bytes(bytes(data))
    return dest


def _renormalised(folder, dest):
    """The attack the manifest cannot see: the model's input normalisation edited, and
    manifest.json rewritten to match."""
    shutil.copytree(folder, dest)
    model = onnx.load(str(dest / "model.onnx"))
    mean = next(t for t in model.graph.initializer
                if t.dims == [3] and np.allclose(numpy_helper.to_array(t), [123.675, 116.28, 103.53], atol=1e-3))
    mean.CopyFrom(numpy_helper.from_array(np.zeros(3, np.float32), mean.name))
    onnx.save(model, str(dest / "model.onnx"))
    write_manifest(dest)
    return dest


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_explain_onnx_refuses_flipped_bytes_like_predict(exported, tmp_path, synth_covers):
    folder, _ = exported
    bad = _flipped(folder, tmp_path / "flipped")
    out = tmp_path / "explain"
    res = CliRunner().invoke(main, ["explain", "--onnx", str(bad), str(_covers(synth_covers, 1)[0]), "--out", str(out),
                                    "--samples", "20", "--quiet"])
    assert res.exit_code == 2
    line = _one_line(res.output)
    assert "model.onnx: sha256 differs from the manifest" in line and "refusing to load it" in line
    assert not out.exists()  # nothing written
    with pytest.raises(ArtifactError, match="sha256 differs"):
        OnnxModel(bad / "model.onnx")  # the model file itself: verified against its folder's manifest


def test_manifest_rewritten_to_match_is_accepted_unless_pinned(consumer, exported, tmp_path, synth_covers):
    folder, _ = exported
    pinned = sha256_file(folder / "model.onnx")
    bad = _renormalised(folder, tmp_path / "renormalised")
    covers = _covers(synth_covers, 6)
    honest = consumer.Artifact.load(folder, expect_sha256=pinned.upper()).predict_files(covers)
    edited = consumer.Artifact.load(bad).predict_files(covers)  # the manifest alone cannot tell
    assert not np.allclose([r["probas"] for r in honest], [r["probas"] for r in edited], atol=1e-3)
    with pytest.raises(consumer.ArtifactError, match="is not the expected"):
        consumer.Artifact.load(bad, expect_sha256=pinned)
    with pytest.raises(consumer.ArtifactError, match="is not the expected"):
        consumer.Artifact.load(bad, verify=False, expect_sha256=pinned)
    with pytest.raises(consumer.ArtifactError, match="not a sha256"):
        consumer.Artifact.load(folder, expect_sha256="abc")


def test_predict_script_expect_sha256(exported, tmp_path, synth_covers):
    folder, _ = exported
    pinned = sha256_file(folder / "model.onnx")
    bad = _renormalised(folder, tmp_path / "renormalised")
    cover = str(_covers(synth_covers, 1)[0])
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(bad), cover, "--expect-sha256", pinned, "--cpu"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert "is not the expected" in _one_line(res.stderr)
    res = subprocess.run([sys.executable, str(PREDICT_SCRIPT), str(folder), cover, "--expect-sha256", pinned, "--cpu",
                          "--quiet"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == ""
    assert json.loads(res.stdout)["path"] == cover


def test_explain_expect_sha256(exported, tmp_path, synth_covers):
    folder, _ = exported
    bad = _renormalised(folder, tmp_path / "renormalised")
    out = tmp_path / "explain"
    cover = str(_covers(synth_covers, 1)[0])
    runner = CliRunner()
    res = runner.invoke(main, ["explain", "--onnx", str(bad), cover, "--out", str(out), "--expect-sha256",
                               sha256_file(folder / "model.onnx"), "--quiet"])
    assert res.exit_code == 2 and "is not the expected" in _one_line(res.output) and not out.exists()
    res = runner.invoke(main, ["explain", "--checkpoint", "x.pt", cover, "--out", str(out), "--expect-sha256", "0" * 64])
    assert res.exit_code == 2 and "needs --onnx" in _one_line(res.output)
