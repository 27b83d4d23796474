"""The study protocol: it must say "signal" where the signal is planted and "no signal" where the
labels are shuffled. Tiny configurations (32 px crops, 300 covers, 2 seeds, 1 epoch) keep it short.

At that size the CNN does not yet read the planted features; the colour-histogram predictor
does (the synthetic palette and title contrast are colour statistics), and the decision rule
says "signal" when either predictor finds it. The CNN's own learning is tested by the training
tests and measured at full size by `bookcover-fast study` (README)."""

import csv
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from bookcover.classifier.study import pooled, run_study
from bookcover.cli import main
from bookcover.errors import BookcoverError

TINY = dict(image_size=36, crop=32, epochs=1, batch_size=32, eval_batch_size=128, max_covers=300)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from bookcover.data.synth import synthesise

    return synthesise(tmp_path_factory.mktemp("planted") / "covers", n=300, seed=11, quiet=True)


def shuffled_copy(sample, root):
    """The real sample's CSV with a score column in random order; the images folder is linked."""
    root.mkdir()
    os.symlink(sample / "images", root / "images")
    with open(sample / "book_data.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    scores = np.random.default_rng(0).permutation(len(rows))
    with open(root / "book_data.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "shuffled"])
        writer.writeheader()
        for row, score in zip(rows, scores, strict=True):
            writer.writerow({**row, "shuffled": int(score)})
    return root


def test_planted_signal_is_found(planted, tmp_path):
    out = tmp_path / "study"
    summary = run_study(planted, out, seeds=2, fractions=(0.5, 1.0), overrides=TINY, quiet=True)
    assert summary["verdict"] == "signal", summary["sentence"]
    assert summary["sentence"].startswith("Signal") and summary["test"]["histogram"]["finds_signal"]
    assert {r["fraction"] for r in summary["runs"]} == {0.5, 1.0} and len(summary["runs"]) == 4
    for name in ("report.md", "study.json", "learning_curve.png", "seeds.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "**Verdict: signal.**" in report and "Decision rule" in report and "1.38" in report
    assert json.loads((out / "study.json").read_text())["verdict"] == "signal"


def test_shuffled_real_labels_carry_no_signal(goodreads_sample, tmp_path):
    data = shuffled_copy(goodreads_sample, tmp_path / "shuffled")
    summary = run_study(data, tmp_path / "study", seeds=2, fractions=(1.0,),
                        overrides={**TINY, "score_column": "shuffled"}, quiet=True)
    assert summary["verdict"] == "no signal", summary["sentence"]
    assert summary["sentence"].startswith("No signal")
    assert not summary["test"]["model"]["finds_signal"] and not summary["test"]["histogram"]["finds_signal"]


def test_pooled_rule_on_hand_made_predictions():
    from bookcover.classifier.study import Scored

    labels = np.repeat(np.arange(5), 40)
    ids = np.arange(labels.size)
    perfect = Scored(ids, labels, labels, labels.astype(float), np.full(200, 2), np.zeros(200))
    pool = pooled([perfect, perfect], 5)  # two seeds, same covers: averaged per cover
    assert pool["covers"] == 200 and pool["model"]["finds_signal"] and not pool["histogram"]["finds_signal"]
    assert pool["model"]["mae_minus_middle"] == pytest.approx(-1.2)
    assert pool["histogram"]["spearman"] is None and pool["histogram"]["spearman_p"] == 1.0


def test_study_refuses_a_non_empty_out(tmp_path, planted):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BookcoverError, match="recorded writing"):
        run_study(planted, tmp_path, seeds=1, overrides=TINY, quiet=True)
    for extra in ([], ["--overwrite"]):  # the shared --out policy: --overwrite never touches what is not ours
        result = CliRunner().invoke(main, ["study", "--data", str(planted), "--out", str(tmp_path), "--quiet", *extra])
        assert result.exit_code == 2 and "recorded writing" in result.output and len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_study_seed_picks_the_seeds_and_overwrite_replaces_its_own_study(planted, tmp_path):
    """--seed S trains seeds S..S+N-1; --overwrite replaces an earlier study (its own files only)."""
    out = tmp_path / "study"
    args = ["study", "--data", str(planted), "--out", str(out), "--seeds", "1", "--seed", "7", "--fractions", "1",
            "--image-size", "36", "--crop", "32", "--epochs", "1", "--batch-size", "32", "--max-covers", "300",
            "--device", "cpu", "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    summary = json.loads((out / "study.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [7] and summary["first_seed"] == 7
    assert (out / "runs" / "seed7" / "best.pt").is_file()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    replaced = CliRunner().invoke(main, [*args[:-1], "--seed", "8", "--overwrite", "--quiet"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["seed8"]


def test_heldout_set_is_scored_by_every_seed_against_its_given_levels(planted, tmp_path):
    """--heldout with --level-column: every seed scores the whole held-out set against the levels
    in that column (here reversed, so they differ from the set's own ranking), pooled like the
    test split, with its own verdict in study.json and the report."""
    from bookcover.data.synth import synthesise

    other = synthesise(tmp_path / "other", n=100, seed=12, quiet=True)
    with open(other / "book_data.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    given = [4 - i * 5 // len(rows) for i in range(len(rows))]  # the reverse of the list-order levels
    with open(other / "book_data.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "given"])
        writer.writeheader()
        for row, level in zip(rows, given, strict=True):
            writer.writerow({**row, "given": level})
    out = tmp_path / "study"
    summary = run_study(planted, out, seeds=2, fractions=(1.0,), heldout=other, level_column="given",
                        overrides=TINY, quiet=True)
    assert summary["heldout"] == {**summary["heldout"], "data": str(other), "level_column": "given"}
    assert summary["heldout_pooled"]["covers"] == 100
    assert summary["heldout_verdict"] in ("signal", "no signal")
    assert all(r["heldout"]["model"]["n"] == 100 for r in summary["runs"])
    assert "held-out" in (out / "report.md").read_text().lower()
    with pytest.raises(BookcoverError, match="--heldout"):
        run_study(planted, tmp_path / "nope", seeds=1, level_column="given", overrides=TINY, quiet=True)
