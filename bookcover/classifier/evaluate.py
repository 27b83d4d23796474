"""Evaluate a classifier on dataset splits, beside the trivial baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bookcover.classifier.config import TrainConfig
from bookcover.classifier.metrics import baselines, confusion_matrix, ordinal_metrics
from bookcover.classifier.predict import load_classifier, predict_pixels
from bookcover.classifier.report import plot_confusion, write_report
from bookcover.data.dataset import LabelledCovers, load_labelled
from bookcover.runs import check_out_dir, locate_recorded_data, prepare_out_dir, write_json

# What an evaluation writes: --overwrite replaces these and nothing else.
EVALUATE_OUTPUTS = ("results.json", "report.md", "confusion.png")


def evaluate_splits(model, data: LabelledCovers, config: TrainConfig, device, splits=("train", "val", "test")) -> dict:
    """Model metrics beside the trivial baselines (majority taken from train labels)."""
    train_labels = data.labels[data.select("train")]
    results = {}
    for split in splits:
        pos = data.select(split)
        pred = predict_pixels(model, data.images(pos), config.crop, config.eval_batch_size)
        labels = data.labels[pos]
        results[split] = {
            "model": ordinal_metrics(pred["rank"], labels),
            "baselines": baselines(labels, config.num_levels, train_labels),
            "confusion": confusion_matrix(pred["rank"], labels, config.num_levels).tolist(),
        }
    return results


def evaluate_checkpoint(
    checkpoint: str | Path, data: str | Path | None = None, split: str = "test", out: str | Path | None = None,
    quiet: bool = False, overwrite: bool = False,
) -> dict:
    """Metrics for one split (or all three) of the checkpoint's data, or of another dataset.

    The split is recomputed from the checkpoint's seed, so the default test split is the one
    held out during training. out follows the --out policy (bookcover.runs).
    """
    if out is not None:
        check_out_dir(out, overwrite=overwrite, ours=EVALUATE_OUTPUTS)
    clf = load_classifier(checkpoint)
    config = clf.config
    config.data = str(data) if data is not None else locate_recorded_data(config.data, checkpoint)
    ds = load_labelled(config, quiet)
    splits = ("train", "val", "test") if split == "all" else (split,)
    results = evaluate_splits(clf.model, ds, config, clf.device, splits)
    if out is not None:
        out = prepare_out_dir(out, overwrite=overwrite, ours=EVALUATE_OUTPUTS)
        write_json(out / "results.json", {"checkpoint": str(checkpoint), "splits": results})
        last = splits[-1]
        plot_confusion(np.asarray(results[last]["confusion"]), out / "confusion.png", f"{last} confusion matrix")
        write_report(out, f"Evaluation of {checkpoint}", results, [f"Data: {ds.summary()}"])
    return results
