"""Pictures and report.md for a GAN run: loss curves, evaluation tables beside their baselines."""

from __future__ import annotations

from pathlib import Path

from bookcover.figures import pyplot, save_figure


def plot_gan_curves(history: list[dict], out: str | Path) -> None:
    """Per-step D and G losses, and D(x) / D(G(z)), with epoch means drawn over them."""
    steps = [h for h in history if h.get("kind") == "step"]
    if not steps:
        return
    x = [h["step"] for h in steps]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(11, 3.8))
    ax1.plot(x, [h["loss_d"] for h in steps], lw=0.8, label="D loss")
    ax1.plot(x, [h["loss_g"] for h in steps], lw=0.8, label="G loss")
    ax1.set(xlabel="step", ylabel="BCE", title="losses")
    ax1.legend(fontsize=8)
    ax2.plot(x, [h["d_x"] for h in steps], lw=0.8, label="D(x), real")
    ax2.plot(x, [h["d_g_z1"] for h in steps], lw=0.8, label="D(G(z)), before G step")
    ax2.plot(x, [h["d_g_z2"] for h in steps], lw=0.8, label="D(G(z)), after D step")
    ax2.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax2.set(xlabel="step", ylabel="mean probability", title="discriminator outputs", ylim=(0, 1))
    ax2.legend(fontsize=8)
    save_figure(fig, out)


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def swd_table(swd: dict[str, dict[str, float]]) -> str:
    """SWD x 1e3 per pyramid level for generated, real-vs-real and noise, one row each."""
    levels = [k for k in swd["real_vs_real"] if k != "mean"]
    head = "| compared with real half A | " + " | ".join(f"{lv} px" for lv in levels) + " | mean |"
    lines = [head, "|---|" + "---:|" * (len(levels) + 1)]
    names = {
        "generated": "generated (G)",
        "real_vs_real": "real half B (baseline: best possible)",
        "noise": "uniform noise (baseline: worst)",
    }
    for key, label in names.items():
        row = swd[key]
        lines.append(f"| {label} | " + " | ".join(_fmt(row[lv]) for lv in levels) + f" | {_fmt(row['mean'])} |")
    return "\n".join(lines)


def write_gan_report(out_dir: str | Path, ev: dict, title: str = "DCGAN evaluation") -> Path:
    """report.md: every measure beside its real-vs-real and noise baselines, and the pictures."""
    out_dir = Path(out_dir)
    swd = ev["swd"]
    lines = [
        f"# {title}",
        "",
        f"Checkpoint: `{ev['checkpoint']}` (epoch {ev['epoch']}). {ev['n']} generated images vs "
        f"{ev['n']} real covers per half ({ev['real_covers']} real covers of the top levels in all).",
        "",
    ]
    lines += [
        "## Sliced Wasserstein distance (x 1e3; Laplacian-pyramid 7x7 patches, ProGAN)",
        "",
        swd_table(swd),
        "",
        f"**Verdict:** {ev['verdict']}",
        "",
    ]
    if ev.get("trust"):
        lines += [f"**Which measure to trust:** {ev['trust']}", ""]
    fk = ev.get("fid_kid")
    if fk:
        lines += [
            "## FID and KID on the CORAL classifier's penultimate features",
            "",
            f"Classifier: `{fk['classifier']}` ({fk['dim']}-d features; not Inception, so not comparable to "
            "published FIDs).",
            "",
            "| compared with real half A | FID | KID (mean +- std over subsets) |",
            "|---|---:|---:|",
        ]
        for key, label in (("generated", "generated (G)"), ("real_vs_real", "real half B"), ("noise", "uniform noise")):
            r = fk[key]
            lines.append(f"| {label} | {_fmt(r['fid'])} | {r['kid']:.4g} +- {r['kid_std']:.2g} |")
        lines.append("")
    else:
        lines += ["FID/KID: not computed (pass `--classifier` with a trained CORAL checkpoint).", ""]
    div, mem = ev["diversity"], ev["memorisation"]
    lines += [
        "## Diversity and memorisation",
        "",
        "| measure | generated | real covers |",
        "|---|---:|---:|",
        f"| mean pairwise RMS distance (pixels in [-1, 1]) | {_fmt(div['generated'], 3)} | {_fmt(div['real'], 3)} |",
        f"| median distance to the nearest training cover | {_fmt(mem['generated_median'], 3)} | "
        f"{_fmt(mem['real_median'], 3)} (half A to half B) |",
        "",
        f"Copies flagged (nearest-training distance < {mem['threshold']:.3f} = {mem['fraction']} x the real "
        f"median, and < {mem['ratio']} x the distance to the second-nearest cover): "
        f"**{mem['flagged']} of {ev['n']}** ({mem['close']} pass the first test alone). "
        f"Distances at {mem['resolution']} px, centre crops.",
        "",
    ]
    if div["generated"] < 0.5 * div["real"]:
        lines += [
            f"**Note:** the samples are far less diverse than real covers "
            f"({div['generated']:.3f} vs {div['real']:.3f}): "
            "mode collapse or blurry averages. A small nearest-training distance then means 'close to an average "
            "cover', not copying.",
            "",
        ]
    for name, caption in (
        ("samples.png", "Random samples"),
        ("nearest.png", "Closest generated / training pairs"),
        ("curves.png", "Training curves"),
    ):
        if (out_dir / name).is_file():
            lines += [f"![{caption}]({name})", ""]
    if ev.get("warnings"):
        lines += ["## Training warnings", ""] + [f"- {w}" for w in ev["warnings"]] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
