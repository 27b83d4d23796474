"""Pictures and a short report.md for a run directory: curves, confusion matrix, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bookcover.runs import pyplot, save_figure

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
    save_figure(fig, out)


def plot_confusion(cm: np.ndarray, out: str | Path, title: str = "test confusion matrix") -> None:
    k = cm.shape[0]
    fig, ax = pyplot().subplots(figsize=(4.6, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="black" if cm[i, j] < cm.max() / 2 else "white")
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted level", ylabel="true level", title=title)
    save_figure(fig, out)


def verdict(model_mae: float, middle_mae: float, majority_mae: float) -> str:
    best = min(middle_mae, majority_mae)
    if not np.isfinite(model_mae):
        return "no test covers: nothing to judge."
    if model_mae < best:
        return f"the model beats the best trivial baseline by {best - model_mae:.3f} MAE ({model_mae:.3f} vs {best:.3f})."
    return (
        f"the model does NOT beat the trivial baseline ({model_mae:.3f} vs {best:.3f} MAE): "
        "it has not learned anything useful from the covers."
    )


def metrics_table(results: dict[str, dict]) -> str:
    lines = [
        "| split | n | MAE | RMSE | accuracy | always-middle MAE | always-majority MAE |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for split, r in results.items():
        m, b = r["model"], r["baselines"]
        lines.append(
            f"| {split} | {m['n']} | {m['mae']:.3f} | {m['rmse']:.3f} | {m['accuracy']:.3f} "
            f"| {b['middle']['mae']:.3f} | {b['majority']['mae']:.3f} |"
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
        f"**Verdict:** {verdict(test['model']['mae'], test['baselines']['middle']['mae'], test['baselines']['majority']['mae'])}",
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
