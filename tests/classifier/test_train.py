"""Training runs: run directory contents, resume after a kill, NaN loss, refusing to overwrite."""

import json

import pytest
import torch

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier import train as classifier
from bookcover.classifier.train import train_classifier
from bookcover.errors import BookcoverError, TrainingDiverged
from tests.conftest import tiny_config


def test_run_directory_has_everything(tiny_run):
    for name in ("config.json", "metrics.jsonl", "best.pt", "last.pt", "curves.png", "confusion.png",
                 "report.md", "results.json", "skipped_covers.csv"):
        assert (tiny_run / name).is_file(), name
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    report = (tiny_run / "report.md").read_text()
    assert "always middle" in report and "Verdict" in report and "95 % CI" in report
    results = json.loads((tiny_run / "results.json").read_text())
    assert results["splits"]["test"]["baselines"]["middle"]["mae"] > 0


def test_existing_run_is_not_overwritten(tiny_run, synth_covers):
    before = (tiny_run / "last.pt").read_bytes()
    with pytest.raises(BookcoverError, match="--resume"):
        train_classifier(tiny_config(synth_covers), tiny_run, quiet=True)
    assert (tiny_run / "last.pt").read_bytes() == before


class Killed(Exception):
    pass


def test_resume_after_a_kill_matches_an_uninterrupted_run(synth_covers, tmp_path):
    cfg = tiny_config(synth_covers, epochs=3)
    train_classifier(cfg, tmp_path / "full", quiet=True)

    def kill(epoch, step):
        if epoch == 1 and step == 1:  # mid-way through the second epoch
            raise Killed

    with pytest.raises(Killed):
        train_classifier(cfg, tmp_path / "resumed", quiet=True, on_step=kill)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt", CLASSIFIER_KIND)["epoch"] == 1
    train_classifier(cfg, tmp_path / "resumed", resume=True, quiet=True)

    full = load_checkpoint(tmp_path / "full" / "last.pt", CLASSIFIER_KIND)
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt", CLASSIFIER_KIND)
    assert resumed["epoch"] == 3
    for name, tensor in full["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(synth_covers, tmp_path, monkeypatch):
    cfg = tiny_config(synth_covers, epochs=3)
    real = classifier.coral.coral_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 4 else loss  # 3 steps/epoch: NaN in epoch 2

    monkeypatch.setattr(classifier.coral, "coral_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train_classifier(cfg, tmp_path / "nan", quiet=True)
    kept = load_checkpoint(tmp_path / "nan" / "last.pt", CLASSIFIER_KIND)
    assert kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values() if t.is_floating_point())
