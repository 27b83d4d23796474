"""`bookcover-fast explain` end to end on a tiny trained run and an ONNX artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, save_atomic
from bookcover.classifier.config import preset
from bookcover.classifier.predict import build_model
from bookcover.cli import main
from bookcover.data.synth import synthesise
from tests.explain.helpers import export_tiny_onnx


@pytest.fixture(scope="module")
def covers(tmp_path_factory):
    return synthesise(tmp_path_factory.mktemp("explain-cli") / "covers", n=10, seed=2, quiet=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained ResNet-34 CORAL checkpoint at 36 px -> 32 px: real loading, no training time."""
    config = preset("quick", image_size=36, crop=32)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_atomic({"kind": CLASSIFIER_KIND, "model": build_model(config).state_dict(), "config": config.to_dict()}, path)
    return path


def test_explain_checkpoint_writes_outputs_and_is_reproducible(checkpoint, covers, tmp_path):
    planted = json.loads((covers / "planted.json").read_text())["covers"]
    badge_row = next(c["row"] for c in planted if "badge" in c["boxes"])
    paths = [str(covers / "images" / f"{badge_row}.jpg")]
    runner = CliRunner()
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res = runner.invoke(main, ["explain", "--checkpoint", str(checkpoint), *paths, "--out", str(out),
                                   "--samples", "60", "--seed", "3", "--quiet"])
        assert res.exit_code == 0, res.output
        outs.append(out)
    for p in paths:
        stem = Path(p).stem
        assert (outs[0] / f"{stem}.overlay.png").stat().st_size > 0
        assert (outs[0] / f"{stem}.weights.json").read_bytes() == (outs[1] / f"{stem}.weights.json").read_bytes()
    rec = json.loads((outs[0] / f"{badge_row}.weights.json").read_text())
    assert {"id", "weight", "pixels"} <= set(rec["segments"][0]) and "r2" in rec and "intercept" in rec
    assert "time" not in json.dumps(rec) and rec["options"]["samples"] == 60
    report = (outs[0] / "report.md").read_text()
    assert "deletion AUC" in report and "Pointing game" in report and "re-rendering" in report.lower()
    assert (outs[0] / "sheet.png").is_file()


def test_explain_onnx_folder_and_bad_covers(tmp_path, covers):
    artifact = export_tiny_onnx(tmp_path / "artifact")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    res = CliRunner().invoke(main, ["explain", "--onnx", str(artifact), str(covers / "images" / "5.jpg"),
                                    str(bad), "--out", str(tmp_path / "o"), "--samples", "50", "--quiet"])
    assert res.exit_code == 1
    assert "skipped" in res.output and "broken.jpg" in res.output and "Traceback" not in res.output
    assert (tmp_path / "o" / "5.weights.json").is_file() and "broken.jpg" in (tmp_path / "o" / "report.md").read_text()


def test_explain_needs_one_model_and_some_covers(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["explain", "--out", str(tmp_path), "x.jpg"])
    assert res.exit_code != 0 and "exactly one" in res.output
    res = runner.invoke(main, ["explain", "--onnx", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "nothing to explain" in res.output
