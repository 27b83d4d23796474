"""Evaluate a classifier on dataset splits, beside the trivial baselines, with uncertainty.

Every split's result carries, beside the model's MAE / RMSE / accuracy:
  - model.mae_ci95 and model.mae_minus_middle_ci95: bootstrap intervals (stats.py), the second
    paired (model and always-middle scored on the same resampled covers);
  - model.spearman / model.spearman_p: the expected level sum_k P(level > k) against the true
    level, two-sided permutation p (None / 1.0 when the predictions are constant);
  - baselines.middle and .majority (the evaluated set's own most common level) and .prior
    (the median training level: the constant that minimises MAE under the training labels),
    each with its mae_ci95;
  - baselines.histogram: ridge on colour statistics (histogram.py), fitted on the training
    covers, with the same interval and rank fields; and model.mae_minus_histogram_ci95.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bookcover.classifier.config import TrainConfig
from bookcover.classifier.histogram import FeatureMemo, HistogramRidge, fit_histogram_ridge
from bookcover.classifier.metrics import baselines, confusion_matrix, ordinal_metrics
from bookcover.classifier.predict import Classifier, load_classifier, predict_pixels
from bookcover.classifier.report import data_table, plot_confusion, write_report
from bookcover.classifier.stats import expected_level, mae_ci, paired_diff_ci, spearman_test
from bookcover.data.dataset import LabelledCovers, load_labelled, prepare_given_levels, resolve_source
from bookcover.errors import BookcoverError
from bookcover.jsonio import write_json
from bookcover.outputs import OutPathError, check_out_dir, prepare_out_dir, writing
from bookcover.resume import locate_recorded_data

COMMAND = "evaluate"  # the name its output folders are recorded under (bookcover.outputs)
EVALUATE_OUTPUTS = ("results.json", "report.md", "confusion.png")
# A training run's own files: an evaluation written into that folder would replace its report.
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


def scored(pred: np.ndarray, score: np.ndarray, labels: np.ndarray, middle: int) -> dict:
    """Metrics of level predictions plus their intervals and rank correlation."""
    rho, p = spearman_test(score, labels)
    return {
        **ordinal_metrics(pred, labels),
        "mae_ci95": mae_ci(pred, labels),
        "mae_minus_middle_ci95": paired_diff_ci(pred, np.full(labels.shape, middle), labels),
        "spearman": rho,
        "spearman_p": p,
    }


def split_result(
    rank: np.ndarray, expected: np.ndarray, labels: np.ndarray, num_levels: int,
    train_labels: np.ndarray | None, histogram: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """One split: the model, every baseline, the confusion matrix."""
    labels = np.asarray(labels)
    middle = num_levels // 2
    model = scored(rank, expected, labels, middle)
    base = baselines(labels, num_levels, train_labels)
    for b in base.values():
        b["mae_ci95"] = mae_ci(np.full(labels.shape, b["level"]), labels)
    if histogram is not None:
        levels, scores = histogram
        base["histogram"] = scored(levels, scores, labels, middle)
        model["mae_minus_histogram_ci95"] = paired_diff_ci(rank, levels, labels)
    return {"model": model, "baselines": base, "confusion": confusion_matrix(rank, labels, num_levels).tolist()}


def fit_histogram(reference: LabelledCovers, memo: FeatureMemo | None = None) -> HistogramRidge:
    """The colour-histogram ridge, fitted on the reference's train split (alpha on its val split)."""
    memo = memo or FeatureMemo()
    tr, va = reference.select("train"), reference.select("val")
    return fit_histogram_ridge(memo.of(reference, tr), reference.labels[tr], memo.of(reference, va),
                               reference.labels[va], reference.num_levels)


def evaluate_splits(
    model, data: LabelledCovers, config: TrainConfig, device, splits=("train", "val", "test"),
    reference: LabelledCovers | None = None, histogram: bool = True,
) -> dict:
    """Model metrics beside the baselines for each split of data.

    reference holds the covers the model was trained on (default: data itself): the prior
    baseline uses its train labels, the histogram baseline is fitted on its train split
    (histogram=False skips it); middle and majority come from each split's own labels.
    """
    ref = data if reference is None else reference
    train_labels = ref.labels[ref.select("train")]
    memo = FeatureMemo()
    ridge = fit_histogram(ref, memo) if histogram else None
    results = {}
    for split in splits:
        pos = data.select(split)
        images = data.images(pos)
        pred = predict_pixels(model, images, config.crop, config.eval_batch_size)
        hist = ridge.predict(memo.of(data, pos)) if ridge is not None else None
        results[split] = split_result(pred["rank"], expected_level(pred["probas"]), data.labels[pos],
                                      config.num_levels, train_labels, hist)
        if ridge is not None:
            results[split]["baselines"]["histogram"]["alpha"] = ridge.alpha
    return results


def test_metrics_record(test: dict, source: str) -> dict:
    """What a checkpoint keeps of its own test evaluation: the model's metrics and the baselines."""
    base = test["baselines"]
    return {"source": source, "model": test["model"],
            "baselines": {k: base[k] for k in ("middle", "majority", "prior", "histogram") if k in base}}


def checkpoint_test_metrics(clf: Classifier) -> dict | None:
    """A checkpoint's own test metrics: stored in it by training, else recomputed on its own test split.

    Never read from a report lying beside the checkpoint, which another command may have
    written. None when the checkpoint has none stored and its training covers cannot be read.
    """
    stored = clf.checkpoint.get("test_metrics")
    if stored is not None:
        return stored
    try:
        covers = load_labelled(clf.config, True)
    except BookcoverError:
        return None
    test = evaluate_splits(clf.model, covers, clf.config, clf.device, ("test",))["test"]
    return test_metrics_record(test, "recomputed from the checkpoint on its own test split")


def refuse_run_dir(out: Path) -> None:
    """An evaluation never writes over a training run's own report, results and confusion matrix."""
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held:
        raise OutPathError(
            f"--out {out}: holds a training run ({', '.join(held)}); evaluation would replace its report.md and "
            "results.json: choose another --out"
        )


def load_evaluation_data(
    config: TrainConfig, data: str | Path | None, level_column: str | None, quiet: bool
) -> tuple[LabelledCovers, LabelledCovers | None, str]:
    """(covers to evaluate, the training covers or None if unreadable, how the levels were made)."""
    own = data is None
    if level_column is not None:
        source = resolve_source(config, quiet) if own else str(data)
        covers = prepare_given_levels(source, level_column, size=(config.image_size, config.image_size),
                                      num_levels=config.num_levels, seed=config.seed, quiet=quiet)
        levels = f"column {level_column!r} of {source} (given levels, not re-ranked)"
    else:
        # Another set is evaluated whole: the checkpoint's max_covers chose its training covers only.
        other = config if own else replace(config, data=str(data), max_covers=None)
        covers = load_labelled(other, quiet)
        how = f"column {config.score_column}" if config.score_column else "list order"
        levels = f"ranked by {how} into {config.num_levels} equal levels"
    if own and level_column is None:
        return covers, covers, levels
    try:
        return covers, load_labelled(config, True), levels
    except BookcoverError:
        return covers, None, levels  # the training covers are gone


def evaluate_checkpoint(
    checkpoint: str | Path, data: str | Path | None = None, split: str = "test", out: str | Path | None = None,
    quiet: bool = False, overwrite: bool = False, level_column: str | None = None, device: str = "auto",
) -> dict:
    """Metrics for one split (or the whole set, split='all') of the checkpoint's data or another set.

    The checkpoint's own data is re-split by its seed, so the default test split is the one
    held out during training. split='all' scores every cover as one set (results['all']).
    level_column scores the covers against the integer levels in that CSV column instead of
    ranking them into equal levels. Baselines come from the checkpoint's training covers.
    out follows the --out policy (bookcover.outputs) and is never a training run's folder.
    """
    out = Path(out) if out is not None else None
    if out is not None:
        refuse_run_dir(out)
        check_out_dir(out, COMMAND, overwrite=overwrite)
    clf = load_classifier(checkpoint, device)
    config = clf.config
    if data is None:
        config.data = locate_recorded_data(config.data, checkpoint)
    covers, reference, levels = load_evaluation_data(config, data, level_column, quiet)
    results = evaluate_splits(clf.model, covers, config, clf.device, (split,), reference=reference,
                              histogram=reference is not None)
    if out is not None:
        out = prepare_out_dir(out, COMMAND, overwrite=overwrite)
        record = {"checkpoint": str(checkpoint), "data": str(data or resolve_source(config, True)),
                  "levels": levels, "summary": covers.summary(), "splits": results}
        with writing(out, *EVALUATE_OUTPUTS):
            write_json(out / "results.json", record)
            plot_confusion(np.asarray(results[split]["confusion"]), out / "confusion.png", f"{split} confusion matrix")
            extra = [f"Levels: {levels}.", "", *data_table(covers.summary())]
            if reference is None:
                extra.append("The checkpoint's training covers could not be read: the prior baseline uses the "
                             "evaluated labels and the histogram baseline is missing.")
            write_report(out, f"Evaluation of {checkpoint}", results, extra)
    return results
