"""Evaluation: whole-set results, given levels, intervals beside every number, run folders left alone."""

import csv
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier import checkpoint_test_metrics, load_classifier
from bookcover.classifier.evaluate import evaluate_checkpoint
from bookcover.cli import main
from bookcover.errors import BookcoverError, DataError
from bookcover.export import build_metadata

UNCERTAINTY = ("mae_ci95", "mae_minus_middle_ci95", "spearman", "spearman_p")


def with_levels(synth_covers, tmp_path, levels, name="given"):
    """A copy of the synthetic set's CSV with a level column; the images are linked, not copied."""
    root = tmp_path / "relabelled"
    root.mkdir()
    os.symlink(synth_covers / "images", root / "images")
    with open(synth_covers / "book_data.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(root / "book_data.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), name])
        writer.writeheader()
        for row, level in zip(rows, levels, strict=True):
            writer.writerow({**row, name: level})
    return root


def test_every_split_carries_intervals_and_both_baselines(tiny_run):
    results = json.loads((tiny_run / "results.json").read_text())["splits"]
    for split in ("train", "val", "test"):
        r = results[split]
        assert all(k in r["model"] for k in UNCERTAINTY + ("mae_minus_histogram_ci95",))
        assert set(r["baselines"]) == {"middle", "majority", "prior", "histogram"}
        assert all(k in r["baselines"]["histogram"] for k in UNCERTAINTY)
        lo, hi = r["model"]["mae_ci95"]
        assert lo <= r["model"]["mae"] <= hi
        assert r["baselines"]["prior"]["level"] == 2  # balanced levels: the median is the middle


def test_whole_set_against_its_own_given_levels(tiny_run, synth_covers, tmp_path):
    n = 200
    levels = [i % 3 for i in range(n)]  # unbalanced, nothing like the set's own equal-level ranking
    data = with_levels(synth_covers, tmp_path, levels)
    results = evaluate_checkpoint(tiny_run / "best.pt", data=data, split="all", level_column="given",
                                  out=tmp_path / "eval", quiet=True)
    assert list(results) == ["all"]
    r = results["all"]
    assert r["model"]["n"] == n
    assert np.asarray(r["confusion"]).sum(1).tolist() == [67, 67, 66, 0, 0]  # rows: the given levels
    y = np.asarray(levels)
    assert r["baselines"]["middle"]["mae"] == pytest.approx(np.abs(2 - y).mean())
    ranked = evaluate_checkpoint(tiny_run / "best.pt", data=data, split="all", quiet=True)["all"]
    assert np.asarray(ranked["confusion"]).sum(1).tolist() == [40] * 5  # re-ranked: 5 equal levels
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["splits"]["all"]["model"]["n"] == n and "given" in saved["levels"]


@pytest.mark.parametrize("bad, message", [(7, "has level 7"), (1.5, "has level 1.5"), ("x", "non-numeric")])
def test_bad_level_column_is_a_one_line_error(tiny_run, synth_covers, tmp_path, bad, message):
    levels = [0] * 200
    levels[17] = bad
    data = with_levels(synth_covers, tmp_path, levels)
    with pytest.raises(DataError, match=message):
        evaluate_checkpoint(tiny_run / "best.pt", data=data, split="all", level_column="given", quiet=True)
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--data", str(data),
                                       "--split", "all", "--level-column", "given", "--quiet"])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_evaluation_never_writes_over_a_training_run(tiny_run, synth_covers):
    before = {name: (tiny_run / name).read_bytes() for name in ("report.md", "results.json", "confusion.png")}
    with pytest.raises(BookcoverError, match="holds a training run"):
        evaluate_checkpoint(tiny_run / "best.pt", data=synth_covers, split="all", out=tiny_run, quiet=True)
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--data",
                                       str(synth_covers), "--split", "all", "--out", str(tiny_run), "--quiet"])
    assert result.exit_code != 0 and "holds a training run" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {name: (tiny_run / name).read_bytes() for name in before} == before


def test_export_metrics_come_from_the_checkpoint_not_a_report_beside_it(tiny_run, tmp_path):
    own = json.loads((tiny_run / "results.json").read_text())["splits"]["test"]
    folder = tmp_path / "copied"
    folder.mkdir()
    ckpt = load_checkpoint(tiny_run / "best.pt", CLASSIFIER_KIND)
    torch.save(ckpt, folder / "best.pt")
    (folder / "results.json").write_text(json.dumps({"splits": {"test": {"model": {"mae": 9.9}, "baselines": {}}}}))
    clf = load_classifier(folder / "best.pt")
    meta = build_metadata(clf, folder / "best.pt", 18, "fp32", checkpoint_test_metrics(clf))
    assert meta["bookcover.test_metrics"]["model"] == own["model"]

    del ckpt["test_metrics"]  # a checkpoint from before training stored them: recomputed on its own test split
    torch.save(ckpt, folder / "best.pt")
    recomputed = checkpoint_test_metrics(load_classifier(folder / "best.pt"))
    assert recomputed["model"] == own["model"] and "recomputed" in recomputed["source"]
