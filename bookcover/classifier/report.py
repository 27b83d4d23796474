"""Pictures and a short report.md for a run directory: curves, confusion matrix, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bookcover.figures import pyplot, save_figure

STUDY = {"train": {"mae": 0.14, "rmse": 0.40}, "test": {"mae": 1.38, "rmse": 1.72}}


def plot_curves(history: list[dict], out: str | Path, middle_mae: float | None = None) -> None:
    """Training loss and train/val MAE per epoch, with the always-middle baseline drawn in."""
    if not history:
        return
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="CORAL loss", title="training loss")
    ax2.plot(epochs, [h["train_mae"] for h in history], marker="o", label="train (augmented, running)")
    ax2.plot(epochs, [h["val_mae"] for h in history], marker="o", label="val")
    if middle_mae is not None:
        ax2.axhline(middle_mae, color="grey", ls="--", label=f"always middle level ({middle_mae:.2f})")
    ax2.set(xlabel="epoch", ylabel="MAE (levels)", title="mean absolute error")
    ax2.legend(fontsize=8)
    integer_epochs(ax1, ax2)
    save_figure(fig, out)


def integer_epochs(*axes) -> None:
    """Epoch ticks at whole epochs only (matplotlib would put 1.25, 1.5, ... on a short run)."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_confusion(cm: np.ndarray, out: str | Path, title: str = "test confusion matrix") -> None:
    k = cm.shape[0]
    fig, ax = pyplot().subplots(figsize=(4.6, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="black" if cm[i, j] < cm.max() / 2 else "white")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted level", ylabel="true level", title=title)
    save_figure(fig, out)


def _plain(value) -> str:
    """A summary value as text: lists and dicts joined, never their Python repr."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


DATA_LABELS = {"covers": "covers", "skipped": "skipped (unreadable)", "levels": "popularity levels",
               "per_level": "covers per level (0 = least popular)", "split": "split",
               "image_size": "resized to (px)"}


def data_table(summary: dict) -> list[str]:
    """A data summary (LabelledCovers.summary()) as a two-column markdown table."""
    lines = ["| data | |", "|---|---|"]
    for key, value in summary.items():
        if key == "per_level" and isinstance(value, list):
            text = ", ".join(f"{level}: {n}" for level, n in enumerate(value))
        elif key == "image_size" and isinstance(value, list):
            text = " x ".join(str(v) for v in value)
        else:
            text = _plain(value)
        lines.append(f"| {DATA_LABELS.get(key, key.replace('_', ' '))} | {text} |")
    return lines + [""]


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def compare_with_middle(name: str, r: dict, middle_mae: float) -> str:
    """'worse than always-middle (+0.20, 95 % CI +0.08 to +0.32)', read off the paired interval."""
    ci = r.get("mae_minus_middle_ci95")
    if not ci or not np.isfinite(r["mae"]):
        return f"{name}: no covers, nothing to judge"
    word = "worse than" if ci[0] > 0 else "better than" if ci[1] < 0 else "no better than"
    return (f"{name} is {word} always-middle ({_signed(r['mae'] - middle_mae)}, "
            f"95 % CI {_signed(ci[0])} to {_signed(ci[1])})")


def rank_sentence(r: dict) -> str:
    if r.get("spearman") is None:
        return "its predictions are constant, so they carry no rank order (Spearman rho undefined, p = 1.0)"
    return f"Spearman rho of predicted vs true level {r['spearman']:+.3f} (permutation p {r['spearman_p']:.3g})"


def verdict(result: dict) -> str:
    """The verdict of one split, from the intervals (never from a point estimate)."""
    m, b = result["model"], result["baselines"]
    middle = b["middle"]["mae"]
    if not np.isfinite(m["mae"]):
        return "no covers: nothing to judge."
    parts = [f"{compare_with_middle('the model', m, middle)}; {rank_sentence(m)}."]
    hist = b.get("histogram")
    if hist is not None:
        parts.append(f"{compare_with_middle('The colour-histogram baseline', hist, middle)}.")
        ci = m.get("mae_minus_histogram_ci95")
        if ci:
            word = "worse than" if ci[0] > 0 else "better than" if ci[1] < 0 else "no better than"
            parts.append(f"The model is {word} the histogram baseline ({_signed(m['mae'] - hist['mae'])}, "
                         f"95 % CI {_signed(ci[0])} to {_signed(ci[1])}).")
    return " ".join(parts)


def _ci(r: dict, key: str = "mae_ci95") -> str:
    ci = r.get(key)
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"


def _rho(r: dict) -> str:
    if "spearman_p" not in r:
        return "-"
    return "undefined (constant)" if r["spearman"] is None else f"{r['spearman']:+.3f} (p {r['spearman_p']:.3g})"


def metrics_table(results: dict[str, dict]) -> str:
    """One row per split and predictor: MAE with its interval, the paired gap to always-middle, rho."""
    lines = [
        "| split | predictor | n | MAE | MAE 95 % CI | RMSE | accuracy | MAE − middle, 95 % CI | Spearman rho (p) |",
        "|---|---|---:|---:|---|---:|---:|---|---|",
    ]
    for split, r in results.items():
        rows = [("CORAL-CNN", r["model"])]
        names = {"histogram": "colour histogram (ridge)", "middle": "always middle", "majority": "always majority",
                 "prior": "training prior (median)"}
        rows += [(f"{names.get(k, k)} (level {v['level']})" if "level" in v else names.get(k, k), v)
                 for k, v in r["baselines"].items()]
        for name, m in rows:
            gap = m.get("mae_minus_middle_ci95")
            gap_text = f"{_signed(m['mae'] - r['baselines']['middle']['mae'])} [{gap[0]:+.2f}, {gap[1]:+.2f}]" if gap else "-"
            lines.append(
                f"| {split} | {name} | {m['n']} | {m['mae']:.3f} | {_ci(m)} | {m['rmse']:.3f} | {m['accuracy']:.3f} "
                f"| {gap_text} | {_rho(m)} |"
            )
    return "\n".join(lines)


def write_report(out_dir: str | Path, title: str, results: dict[str, dict], extra: list[str] | None = None) -> Path:
    """report.md: metrics beside the trivial baselines and the study's own numbers."""
    out_dir = Path(out_dir)
    test = results.get("test") or next(iter(results.values()))
    lines = [
        f"# {title}",
        "",
        metrics_table(results),
        "",
        f"**Verdict ({'test' if 'test' in results else next(iter(results))}):** {verdict(test)}",
        "",
        "Intervals: percentile bootstrap, 2,000 resamples (paired for differences); Spearman: expected level "
        "against true level, two-sided permutation p (10,000 permutations).",
        "",
        "The study (Goodreads Best Books Ever, 200 epochs) reported train MAE/RMSE "
        f"{STUDY['train']['mae']}/{STUDY['train']['rmse']} and test {STUDY['test']['mae']}/{STUDY['test']['rmse']}: "
        "worse on test than always predicting the middle level (MAE 1.2 for 5 balanced levels).",
        "",
    ]
    for name, caption in (("curves.png", "Training curves"), ("confusion.png", "Confusion matrix (test)")):
        if (out_dir / name).is_file():
            lines += [f"![{caption}]({name})", ""]
    lines += extra or []
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
