"""Evaluate a saved classifier on a dataset split, beside the trivial baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bookcover.inference import load_classifier
from bookcover.train.classifier import evaluate_splits, load_data
from bookcover.train.report import plot_confusion, write_report


def evaluate_checkpoint(
    checkpoint: str | Path, data: str | Path | None = None, split: str = "test", out: str | Path | None = None, quiet: bool = False
) -> dict:
    """Metrics for one split (or all three) of the checkpoint's data, or of another dataset.

    The split is recomputed from the checkpoint's seed, so the default test split is the one
    held out during training.
    """
    clf = load_classifier(checkpoint)
    config = clf.config
    if data is not None:
        config.data = str(data)
    ds = load_data(config, quiet)
    splits = ("train", "val", "test") if split == "all" else (split,)
    results = evaluate_splits(clf.model, ds, config, clf.device, splits)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"checkpoint": str(checkpoint), "splits": results}, indent=2))
        last = splits[-1]
        plot_confusion(np.asarray(results[last]["confusion"]), out / "confusion.png", f"{last} confusion matrix")
        write_report(out, f"Evaluation of {checkpoint}", results, [f"Data: {ds.summary()}"])
    return results
