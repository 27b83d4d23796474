"""The study's question as one protocol: do covers carry a popularity signal, and how sure are we?

run_study trains a preset over several seeds (each seed draws its own split, initialisation and
shuffling), scores every seed's test covers with intervals against always-middle, the
training-set prior and the colour-histogram baseline, repeats the training on 25 % and 50 % of
the training covers for a learning curve, optionally scores a held-out set against its own
levels, and writes report.md, study.json and two figures.

Decision rule (the report states it too)
----------------------------------------
Pool the seeds' test covers: each cover's paired error difference
    d = |prediction - level| - |middle - level|
is averaged over the seeds whose test split held it, and the mean of d over covers gets a
percentile-bootstrap 95 % interval (2,000 resamples of covers, seeded). Each cover's expected
level, averaged the same way, is rank-correlated with its level (Spearman rho, two-sided
permutation p, 10,000 permutations).

A predictor finds signal when its interval lies entirely below 0 (it beats always-middle) AND
rho > 0 with p < 0.05 (it orders the covers). Two predictors are tested, the CNN and the
colour histogram. The verdict is "signal" when either finds it (naming which), else
"no signal", said as "worse than always-middle" when the CNN's interval lies entirely above
0. Under no signal each one-sided interval test errs with probability 2.5 %, so the verdict
says "signal" wrongly at most 5 % of the time.

The same rule is applied to the held-out set, where every seed scores the same covers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from bookcover.classifier.config import TrainConfig, preset
from bookcover.classifier.evaluate import split_result
from bookcover.classifier.histogram import FeatureMemo, HistogramRidge, fit_histogram_ridge
from bookcover.classifier.predict import load_classifier, predict_pixels
from bookcover.classifier.stats import bootstrap_mean_ci, expected_level, spearman_test
from bookcover.classifier.train import train_classifier
from bookcover.data.dataset import LabelledCovers, load_labelled, prepare_given_levels
from bookcover.errors import UsageError
from bookcover.options import check_fractions, check_train_config
from bookcover.outputs import check_out_dir, claim, prepare_out_dir, settle

FRACTIONS = (0.25, 0.5, 1.0)
ALPHA = 0.05
STUDY = {"mae": 1.38, "rmse": 1.72, "middle": 1.20}


COMMAND = "study"  # the name its output folders are recorded under (bookcover.outputs)
STUDY_FILES = ("study.json", "report.md", "learning_curve.png", "seeds.png")


@dataclass
class Scored:
    """One model's predictions on a set of covers, beside the histogram baseline's."""

    ids: np.ndarray  # cache row of each cover: the same cover has the same id in every seed
    labels: np.ndarray
    rank: np.ndarray
    expected: np.ndarray
    hist_level: np.ndarray
    hist_score: np.ndarray


def _score(clf, covers: LabelledCovers, positions: np.ndarray, ridge: HistogramRidge, memo: FeatureMemo) -> Scored:
    pred = predict_pixels(clf.model, covers.images(positions), clf.config.crop, clf.config.eval_batch_size)
    levels, scores = ridge.predict(memo.of(covers, positions))
    return Scored(covers.rows[positions], covers.labels[positions], pred["rank"], expected_level(pred["probas"]),
                  levels, scores)


def _result(s: Scored, num_levels: int, train_labels: np.ndarray) -> dict:
    return split_result(s.rank, s.expected, s.labels, num_levels, train_labels, (s.hist_level, s.hist_score))


def _per_cover_mean(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(ids, return_inverse=True)
    return np.bincount(inverse, weights=values) / np.bincount(inverse)


def pooled(scored: list[Scored], num_levels: int) -> dict:
    """The decision rule's pooled figures over seeds (see the module docstring)."""
    ids = np.concatenate([s.ids for s in scored])
    labels = np.concatenate([s.labels for s in scored]).astype(np.float64)
    middle = num_levels // 2
    out: dict[str, Any] = {"covers": int(np.unique(ids).size), "scored": int(ids.size)}
    label_per_cover = _per_cover_mean(ids, labels)
    for name, level_key, score_key in (("model", "rank", "expected"), ("histogram", "hist_level", "hist_score")):
        pred = np.concatenate([getattr(s, level_key) for s in scored]).astype(np.float64)
        score = np.concatenate([getattr(s, score_key) for s in scored]).astype(np.float64)
        d = _per_cover_mean(ids, np.abs(pred - labels) - np.abs(middle - labels))
        mae = _per_cover_mean(ids, np.abs(pred - labels))
        rho, p = spearman_test(_per_cover_mean(ids, score), label_per_cover)
        ci = bootstrap_mean_ci(d)
        out[name] = {
            "mae": float(mae.mean()),
            "mae_minus_middle": float(d.mean()),
            "mae_minus_middle_ci95": ci,
            "spearman": rho,
            "spearman_p": p,
            "finds_signal": bool(ci is not None and ci[1] < 0 and rho is not None and rho > 0 and p < ALPHA),
            "worse_than_middle": bool(ci is not None and ci[0] > 0),
        }
    out["middle_mae"] = float(_per_cover_mean(ids, np.abs(middle - labels)).mean())
    return out


def decide(pool: dict) -> str:
    """'signal' or 'no signal', by the decision rule."""
    return "signal" if pool["model"]["finds_signal"] or pool["histogram"]["finds_signal"] else "no signal"


def _fmt_ci(r: dict) -> str:
    lo, hi = r["mae_minus_middle_ci95"]
    return f"{r['mae_minus_middle']:+.2f}, 95 % CI {lo:+.2f} to {hi:+.2f}"


def _rho(r: dict) -> str:
    if r["spearman"] is None:
        return "constant predictions, no rank order (p = 1.0)"
    return f"rho {r['spearman']:+.3f}, p {r['spearman_p']:.3g}"


def verdict_sentence(pool: dict, where: str) -> str:
    """One sentence: the answer, the confidence, and both predictors' evidence."""
    m, h = pool["model"], pool["histogram"]
    decision = decide(pool)
    if decision == "signal" and m["finds_signal"] and h["finds_signal"]:
        head = "Signal: the CNN and the colour histogram both beat always-middle and order the covers"
    elif decision == "signal":
        who = "the CNN" if m["finds_signal"] else "the colour histogram (not the CNN)"
        head = f"Signal: {who} beats always-middle and orders the covers"
    elif m["worse_than_middle"]:
        head = "No signal: the CNN is worse than always-middle and neither predictor beats it while ordering the covers"
    else:
        head = "No signal: neither predictor beats always-middle while ordering the covers"
    return (f"{head} {where} (n = {pool['covers']} covers): CNN MAE − always-middle {_fmt_ci(m)} ({_rho(m)}); "
            f"colour histogram {_fmt_ci(h)} ({_rho(h)}).")


def _covers_for(config: TrainConfig, heldout: str | Path, level_column: str | None, quiet: bool) -> LabelledCovers:
    if level_column is not None:
        return prepare_given_levels(heldout, level_column, size=(config.image_size, config.image_size),
                                    num_levels=config.num_levels, seed=config.seed, quiet=quiet)
    return load_labelled(replace(config, data=str(heldout), max_covers=None, train_fraction=1.0), quiet)


def run_study(
    data: str | Path | None,
    out: str | Path,
    seeds: int = 3,
    preset_name: str = "quick",
    heldout: str | Path | None = None,
    level_column: str | None = None,
    fractions: tuple[float, ...] = FRACTIONS,
    overrides: dict[str, Any] | None = None,
    quiet: bool = False,
    first_seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Run the protocol (module docstring) and write out/report.md, study.json and figures.

    The seeds are first_seed .. first_seed + seeds - 1. Every option is checked and ``out``
    follows the --out policy (bookcover.outputs) before anything is written; its runs/<name> are
    train's own folders, each with its own record.
    """
    from bookcover.classifier.study_report import write_study_report

    out = Path(out)
    check_out_dir(out, COMMAND, overwrite=overwrite)
    if seeds < 1:
        raise UsageError("--seeds must be at least 1")
    fractions = tuple(sorted(set(check_fractions(tuple(fractions))) | {1.0}))
    if level_column is not None and heldout is None:
        raise UsageError("--level-column names the levels of the --heldout set: give --heldout too")
    base = preset(preset_name, data=str(data) if data is not None else None, **(overrides or {}))
    check_train_config(base)
    prepare_out_dir(out, COMMAND, overwrite=overwrite)
    memo = FeatureMemo()
    held_covers = _covers_for(base, heldout, level_column, quiet) if heldout is not None else None
    runs: list[dict] = []
    test_scored: list[Scored] = []
    held_scored: list[Scored] = []
    jobs = [(seed, f) for seed in range(first_seed, first_seed + seeds) for f in sorted(fractions, reverse=True)]
    bar = tqdm(jobs, desc="study runs", unit="run", disable=quiet)
    for seed, fraction in bar:
        bar.set_postfix_str(f"seed {seed}, {fraction:.0%} of train")
        config = replace(base, seed=seed, train_fraction=fraction)
        name = f"seed{seed}" if fraction == 1 else f"seed{seed}-train{round(fraction * 100)}"
        t0 = time.perf_counter()
        claim(out, f"runs/{name}", kind="dir")
        train_classifier(config, out / "runs" / name, quiet=True)
        covers = load_labelled(config, True)
        tr, va, te = (covers.select(s) for s in ("train", "val", "test"))
        ridge = fit_histogram_ridge(memo.of(covers, tr), covers.labels[tr], memo.of(covers, va), covers.labels[va],
                                    config.num_levels)
        clf = load_classifier(out / "runs" / name / "best.pt", device=config.device)
        test = _score(clf, covers, te, ridge, memo)
        record = {"seed": seed, "fraction": fraction, "run": f"runs/{name}", "train_covers": int(tr.size),
                  "best_epoch": int(clf.checkpoint["epoch"]), "histogram_alpha": ridge.alpha,
                  "test": _result(test, config.num_levels, covers.labels[tr])}
        if fraction == 1:
            test_scored.append(test)
            if held_covers is not None:
                held = _score(clf, held_covers, held_covers.select("all"), ridge, memo)
                held_scored.append(held)
                record["heldout"] = _result(held, config.num_levels, covers.labels[tr])
        record["wall_seconds"] = time.perf_counter() - t0
        runs.append(record)
        bar.set_postfix_str(f"seed {seed}: test MAE {record['test']['model']['mae']:.3f}")
    bar.close()
    k = base.num_levels
    summary = {
        "decision_rule": __doc__.split("Decision rule (the report states it too)\n" + "-" * 40 + "\n", 1)[1].strip(),
        "config": base.to_dict(),
        "seeds": seeds,
        "first_seed": first_seed,
        "fractions": list(fractions),
        "heldout": None if heldout is None else {"data": str(heldout), "level_column": level_column,
                                                 "summary": held_covers.summary()},
        "runs": runs,
        "test": pooled(test_scored, k),
        "study": STUDY,
    }
    summary["verdict"] = decide(summary["test"])
    summary["sentence"] = verdict_sentence(summary["test"], f"on the test covers of {seeds} seed{'s' * (seeds > 1)}")
    if held_scored:
        summary["heldout_pooled"] = pooled(held_scored, k)
        summary["heldout_verdict"] = decide(summary["heldout_pooled"])
        summary["heldout_sentence"] = verdict_sentence(summary["heldout_pooled"], f"on the held-out set {heldout}")
    claim(out, *STUDY_FILES)
    (out / "study.json").write_text(json.dumps(summary, indent=2))
    write_study_report(out, summary)
    settle(out, *STUDY_FILES)
    return summary
