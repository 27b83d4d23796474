"""report.md and figures of a study: the verdict first, then the evidence behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bookcover.figures import pyplot, save_figure


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def curve_points(summary: dict) -> list[dict]:
    """Per training fraction: covers, and mean / sd over seeds of each predictor's test MAE."""
    points = []
    for fraction in summary["fractions"]:
        runs = [r for r in summary["runs"] if r["fraction"] == fraction]
        point = {"fraction": fraction, "train_covers": float(np.mean([r["train_covers"] for r in runs])),
                 "seeds": len(runs)}
        for key, pick in (("model", lambda t: t["model"]), ("histogram", lambda t: t["baselines"]["histogram"]),
                          ("middle", lambda t: t["baselines"]["middle"]), ("prior", lambda t: t["baselines"]["prior"])):
            point[key] = _mean_sd([pick(r["test"])["mae"] for r in runs])
        points.append(point)
    return points


def plot_learning_curve(points: list[dict], out: Path, study_mae: float) -> None:
    """Test MAE against training covers, CNN and histogram (mean +- sd over seeds), baselines drawn in."""
    fig, ax = pyplot().subplots(figsize=(6.4, 4.2))
    x = [p["train_covers"] for p in points]
    for key, label, marker in (("model", "CORAL-CNN", "o"), ("histogram", "colour histogram (ridge)", "s")):
        ax.errorbar(x, [p[key][0] for p in points], yerr=[p[key][1] for p in points], marker=marker, capsize=3,
                    label=label)
    ax.plot(x, [p["middle"][0] for p in points], color="grey", ls="--", label="always middle")
    if any(p["prior"][0] != p["middle"][0] for p in points):
        ax.plot(x, [p["prior"][0] for p in points], color="grey", ls=":", label="training prior")
    ax.axhline(study_mae, color="tab:red", ls="-.", lw=1, label=f"the study's CNN ({study_mae}, 53,618 covers)")
    ax.set(xlabel="training covers", ylabel="test MAE (levels), mean ± sd over seeds",
           title="learning curve")
    ax.legend(fontsize=8)
    save_figure(fig, out)


def plot_seed_intervals(summary: dict, out: Path) -> None:
    """Each seed's MAE − always-middle with its 95 % interval, and the pooled interval."""
    rows = []
    for r in summary["runs"]:
        if r["fraction"] == 1:
            t = r["test"]
            rows.append((f"seed {r['seed']}", t["model"], t["baselines"]["histogram"], t["baselines"]["middle"]["mae"]))
    fig, ax = pyplot().subplots(figsize=(6.4, 0.6 * (len(rows) + 1) + 1.4))
    labels = []
    for i, (name, m, h, middle) in enumerate(rows + [("pooled", summary["test"]["model"], summary["test"]["histogram"],
                                                     None)]):
        for dy, r, color, label in ((-0.15, m, "tab:blue", "CORAL-CNN"), (0.15, h, "tab:orange", "colour histogram")):
            centre = r["mae"] - middle if middle is not None else r["mae_minus_middle"]
            lo, hi = r["mae_minus_middle_ci95"]
            ax.errorbar([centre], [i + dy], xerr=[[centre - lo], [hi - centre]], fmt="o", color=color, capsize=3,
                        label=label if i == 0 else None)
        labels.append(name)
    ax.axvline(0, color="grey", ls="--")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="test MAE − always-middle MAE (95 % bootstrap CI); < 0 beats it", title="per seed and pooled")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, out)


def _ci(ci: list[float] | None, signed: bool = True) -> str:
    if not ci:
        return "-"
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if signed else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _rho(r: dict) -> str:
    return "undefined (constant)" if r["spearman"] is None else f"{r['spearman']:+.3f} (p {r['spearman_p']:.3g})"


def seed_table(summary: dict, key: str = "test") -> list[str]:
    lines = ["| seed | n | best epoch | CNN MAE [95 % CI] | CNN RMSE | histogram MAE | always-middle | prior (level) "
             "| CNN − middle [95 % CI] | histogram − middle [95 % CI] | CNN rho (p) | histogram rho (p) | wall s |",
             "|---|---:|---:|---|---:|---:|---:|---|---|---|---|---|---:|"]
    for r in summary["runs"]:
        if r["fraction"] != 1 or key not in r:
            continue
        t = r[key]
        m, b = t["model"], t["baselines"]
        h = b["histogram"]
        lines.append(
            f"| {r['seed']} | {m['n']} | {r['best_epoch']} | {m['mae']:.3f} {_ci(m['mae_ci95'], signed=False)} | {m['rmse']:.3f} "
            f"| {h['mae']:.3f} | {b['middle']['mae']:.3f} | {b['prior']['mae']:.3f} ({b['prior']['level']}) "
            f"| {m['mae'] - b['middle']['mae']:+.3f} {_ci(m['mae_minus_middle_ci95'])} "
            f"| {h['mae'] - b['middle']['mae']:+.3f} {_ci(h['mae_minus_middle_ci95'])} "
            f"| {_rho(m)} | {_rho(h)} | {r['wall_seconds']:.0f} |"
        )
    return lines


def write_study_report(out: Path, summary: dict) -> Path:
    """report.md: the one-sentence answer, the rule, per-seed evidence, the curve, the study's numbers."""
    points = curve_points(summary)
    plot_learning_curve(points, out / "learning_curve.png", summary["study"]["mae"])
    plot_seed_intervals(summary, out / "seeds.png")
    full = [r for r in summary["runs"] if r["fraction"] == 1]
    mae = _mean_sd([r["test"]["model"]["mae"] for r in full])
    rmse = _mean_sd([r["test"]["model"]["rmse"] for r in full])
    middle = _mean_sd([r["test"]["baselines"]["middle"]["mae"] for r in full])
    hist = _mean_sd([r["test"]["baselines"]["histogram"]["mae"] for r in full])
    below = sum(r["test"]["model"]["mae_minus_middle_ci95"][1] < 0 for r in full)
    above = sum(r["test"]["model"]["mae_minus_middle_ci95"][0] > 0 for r in full)
    cfg = summary["config"]
    study = summary["study"]
    lines = [
        "# Does the cover carry signal?",
        "",
        f"**Verdict: {summary['verdict']}.** {summary['sentence']}",
        "",
    ]
    if "heldout_sentence" in summary:
        lines += [f"**Held-out set: {summary['heldout_verdict']}.** {summary['heldout_sentence']}", ""]
    lines += [
        f"Test MAE over {len(full)} seed(s): CNN {mae[0]:.3f} ± {mae[1]:.3f} (RMSE {rmse[0]:.3f} ± {rmse[1]:.3f}), "
        f"colour histogram {hist[0]:.3f} ± {hist[1]:.3f}, always-middle {middle[0]:.3f} ± {middle[1]:.3f} "
        f"(mean ± sd over seeds). {below} of {len(full)} seeds' own 95 % intervals of CNN − middle lie below 0, "
        f"{above} above 0.",
        "",
        f"The study's CNN (Goodreads Best Books Ever, 53,618 covers, 200 epochs): test MAE {study['mae']:.2f} / "
        f"RMSE {study['rmse']:.2f} against {study['middle']:.2f} for always-middle, worse than guessing. "
        f"This protocol's CNN: {mae[0]:.2f} / {rmse[0]:.2f} against {middle[0]:.2f}.",
        "",
        f"Protocol: preset {cfg['preset']}, data {cfg['data'] or 'synthetic default'}, {cfg['epochs']} epochs, "
        f"{cfg['image_size']} px cache -> {cfg['crop']} px crops, batch {cfg['batch_size']}, lr {cfg['lr']:g} "
        f"({cfg['optimizer']}, weight decay {cfg['weight_decay']:g}, {cfg['lr_schedule']} schedule), "
        f"seeds 0..{summary['seeds'] - 1} (each seed: its own split, initialisation and shuffling).",
        "",
        "## Decision rule",
        "",
        summary["decision_rule"],
        "",
        "## Per seed (test split)",
        "",
        *seed_table(summary),
        "",
        "![per-seed intervals](seeds.png)",
        "",
    ]
    if "heldout_pooled" in summary:
        lines += ["## Per seed (held-out set, its own levels)", "", *seed_table(summary, "heldout"), ""]
    lines += [
        "## Learning curve",
        "",
        "| share of train | training covers | CNN test MAE | histogram test MAE | always-middle |",
        "|---:|---:|---|---|---:|",
        *[f"| {p['fraction']:.0%} | {p['train_covers']:.0f} | {p['model'][0]:.3f} ± {p['model'][1]:.3f} "
          f"| {p['histogram'][0]:.3f} ± {p['histogram'][1]:.3f} | {p['middle'][0]:.3f} |" for p in points],
        "",
        "![learning curve](learning_curve.png)",
        "",
        "Every run directory is under runs/ (config, metrics, checkpoints, its own report); study.json holds "
        "every number above.",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
