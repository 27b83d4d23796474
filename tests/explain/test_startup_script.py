"""bench/explain_startup.py (the cold-start breakdown gpu_check.sh runs) on CPU: every phase is
timed, in the CLI's order, and written to JSON (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from bookcover.checkpoint import CLASSIFIER_KIND, save_atomic
from bookcover.classifier.config import preset
from bookcover.classifier.predict import build_model
from bookcover.data.synth import synthesise

explain_startup = pytest.importorskip("bench.explain_startup")

PHASES = ["interpreter", "import torch", "device init", "import explain", "worker pool", "load model",
          "first cover", "second cover"]  # fmt: skip


def test_phases_in_cli_order_written_as_json(tmp_path):
    covers = synthesise(tmp_path / "covers", n=3, seed=4, quiet=True)
    config = preset("quick", image_size=36, crop=32)
    ckpt = tmp_path / "best.pt"
    save_atomic({"kind": CLASSIFIER_KIND, "model": build_model(config).state_dict(), "config": config.to_dict()}, ckpt)
    out = tmp_path / "startup.json"
    result = explain_startup.main(["--checkpoint", str(ckpt), "--images", str(covers / "images"), "--device", "cpu",
                                   "--samples", "64", "--workers", "0", "--json", str(out)])  # fmt: skip
    assert list(result["phases_s"]) == PHASES
    assert all(v is None or v >= 0 for v in result["phases_s"].values())
    assert result["phases_s"]["first cover"] > 0 and result["device"] == "CPU"
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))


def test_fewer_than_two_covers_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="at least two covers"):
        explain_startup.main(["--checkpoint", str(tmp_path / "x.pt"), "--images", str(tmp_path / "empty"),
                              "--device", "cpu"])  # fmt: skip
