"""Training runs: run directory contents, resume after a kill or to extend, NaN loss, the --out policy."""

import json
import os
import shutil
import stat

import pytest
import torch

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier import train as classifier
from bookcover.classifier.train import train_classifier
from bookcover.errors import BookcoverError, DataError, TrainingDiverged
from bookcover.filemodes import current_umask
from tests.conftest import tiny_config, torch_threads


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


def test_best_pt_keeps_weights_and_what_readers_need_last_pt_what_resume_needs(tiny_run):
    best = load_checkpoint(tiny_run / "best.pt", CLASSIFIER_KIND)
    last = load_checkpoint(tiny_run / "last.pt", CLASSIFIER_KIND)
    # A finished run's last.pt drops Adam's state (twice the weights): only a killed run needs it.
    assert "optimizer" not in best and "optimizer" not in last and last["epoch"] == 2
    for key in ("kind", "format", "version", "config", "epoch", "best_val_mae", "data_summary", "preprocess", "model"):
        assert key in best, key
        assert key in last, key
    mode = 0o666 & ~current_umask()
    for name in ("best.pt", "last.pt", "metrics.jsonl", "results.json"):
        assert stat.S_IMODE((tiny_run / name).stat().st_mode) == mode, name
    assert os.path.isabs(best["config"]["data"])


def test_too_few_covers_per_level_are_refused_before_training(synth_covers, tmp_path):
    with pytest.raises(DataError) as info:
        train_classifier(tiny_config(synth_covers, max_covers=10), tmp_path / "few", quiet=True)
    message = str(info.value)
    assert "2 per level" in message and "at least 8" in message and "at least 40 covers" in message
    assert "\n" not in message and not (tmp_path / "few").exists()


def test_resume_extends_a_finished_run_and_says_so(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / ".last.pt.k2j3h4.tmp").write_bytes(b"x" * 1000)  # what a SIGKILL mid-save leaves
    with torch_threads(1):
        result = train_classifier(tiny_config(tiny_run), run, resume=True, epochs=3)
    assert result["resumed_after"] == 2 and result["extended_from"] == 2 and result["epochs"] == 3
    err = capsys.readouterr().err
    assert "training to epoch 3 (extended from 2)" in err and "Adam's moments start afresh" in err
    assert load_checkpoint(run / "last.pt", CLASSIFIER_KIND)["epoch"] == 3
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not list(run.glob(".*.tmp"))

    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    for epochs, why in ((3, "already finished its 3 epochs; nothing to do"), (None, "nothing to do"),
                        (2, "already has 3 epochs, more than --epochs 2; nothing to do")):
        again = train_classifier(tiny_config(tiny_run), run, resume=True, quiet=True, epochs=epochs)
        assert why in again["nothing_to_do"]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_overwrite_starts_again_and_records_the_data_path_absolute(tiny_run, synth_covers, tmp_path, monkeypatch,
                                                                     capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    monkeypatch.chdir(synth_covers.parent)
    cfg = tiny_config(synth_covers.name, max_covers=40, batch_size=8, epochs=2)  # "covers", relative to the cwd
    with pytest.raises(BookcoverError, match="--overwrite"):
        train_classifier(cfg, run, quiet=True)
    with torch_threads(1):
        train_classifier(cfg, run, overwrite=True)
    assert "train: estimated" in capsys.readouterr().err  # the run-time estimate line
    ckpt = load_checkpoint(run / "last.pt", CLASSIFIER_KIND)
    assert ckpt["config"]["data"] == str(synth_covers.resolve()) and ckpt["config"]["max_covers"] == 40
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((run / "config.json").read_text())["data"]["covers"] == 40


def test_existing_run_is_not_overwritten(tiny_run, synth_covers, tmp_path):
    before = (tiny_run / "last.pt").read_bytes()
    with pytest.raises(BookcoverError, match="--resume"):
        train_classifier(tiny_config(synth_covers), tiny_run, quiet=True)
    assert (tiny_run / "last.pt").read_bytes() == before
    with pytest.raises(BookcoverError, match="holds no last.pt"):
        train_classifier(tiny_config(synth_covers), tmp_path / "nothing", resume=True, quiet=True)
    assert not (tmp_path / "nothing").exists()


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
    killed = load_checkpoint(tmp_path / "resumed" / "last.pt", CLASSIFIER_KIND)
    assert killed["epoch"] == 1 and "optimizer" in killed  # unfinished: what an exact resume needs
    assert (tmp_path / "resumed" / "best.pt").stat().st_size < 0.5 * (tmp_path / "resumed" / "last.pt").stat().st_size
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


def test_a_run_killed_while_writing_can_be_resumed_or_overwritten(synth_covers, tmp_path, monkeypatch):
    """Killed after metrics.jsonl grew and last.pt was replaced, before the record was settled
    (issue 18): the pending entries are still ours, so both --resume and --overwrite work."""
    from bookcover.outputs import RECORD_FILE, check_out_dir, prepare_out_dir

    cfg = tiny_config(synth_covers, epochs=2, max_covers=40, batch_size=8)
    run = tmp_path / "run"
    real, calls = classifier.plot_curves, {"n": 0}

    def killed_on_epoch_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier, "plot_curves", killed_on_epoch_2)
    with torch_threads(1), pytest.raises(Killed):
        train_classifier(cfg, run, quiet=True)
    monkeypatch.undo()
    pending = json.loads((run / RECORD_FILE).read_text())["entries"]
    assert pending["metrics.jsonl"]["size"] is None and pending["last.pt"]["size"] is None
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    prepare_out_dir(copy, "train", overwrite=True)
    assert [p.name for p in copy.iterdir()] == [RECORD_FILE]
    with torch_threads(1):
        result = train_classifier(cfg, run, resume=True, quiet=True)
    assert result["resumed_after"] == 2 and (run / "results.json").is_file()
    settled = json.loads((run / RECORD_FILE).read_text())["entries"]
    assert settled["results.json"]["size"] == (run / "results.json").stat().st_size
    assert check_out_dir(run, "train", overwrite=True)[-1] == run / RECORD_FILE
