"""Pictures and report.md for a GAN run: loss curves, evaluation tables beside their baselines."""

from __future__ import annotations

from pathlib import Path

from bookcover.figures import pyplot, save_figure

# What the two D(G(z)) statistics of a step are: one GAN step is D's update, then G's update
# through the updated D, on the same G(z). Used by the plot, the epoch line and report.md.
D_FAKE_BEFORE = "D(G(z)) in D's step, before D's update"
D_FAKE_AFTER = "D(G(z)) in G's step, after D's update"
D_FAKE_LEGEND = (
    "D(G(z)) a/b: D's mean output on the same generated batch, (a) in D's step before D's update and (b) in "
    "G's step after it (G's update comes next); b < a shows D learning, a and b near 0 for long show D winning."
)


def plot_gan_curves(history: list[dict], out: str | Path) -> None:
    """Per-step D and G losses, and D(x) / D(G(z)), with epoch means drawn over them."""
    steps = [h for h in history if h.get("kind") == "step"]
    if not steps:
        return
    x = [h["step"] for h in steps]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(12, 4.2))
    ax1.plot(x, [h["loss_d"] for h in steps], lw=0.8, label="D loss")
    ax1.plot(x, [h["loss_g"] for h in steps], lw=0.8, label="G loss")
    ax1.set(xlabel="step", ylabel="BCE", title="losses")
    ax2.plot(x, [h["d_x"] for h in steps], lw=0.8, label="D(x), real covers, in D's step")
    ax2.plot(x, [h["d_g_z1"] for h in steps], lw=0.8, label=D_FAKE_BEFORE)
    ax2.plot(x, [h["d_g_z2"] for h in steps], lw=0.8, label=D_FAKE_AFTER)
    _epoch_means(ax1, ax2, history)
    ax1.legend(fontsize=8)
    ax2.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax2.set(xlabel="step", ylabel="mean probability 'real'", title="discriminator outputs", ylim=(0, 1))
    ax2.legend(fontsize=7)
    save_figure(fig, out)


def _epoch_means(ax_loss, ax_d, history: list[dict]) -> None:
    """Each epoch's means as short black bars over the steps it spans."""
    last, labelled = 0, set()
    for h in history:
        if h.get("kind") == "step":
            last = h["step"]
        elif h.get("kind") == "epoch" and h.get("steps"):
            lo = last - h["steps"] + 1
            for ax, keys in ((ax_loss, ("loss_d", "loss_g")), (ax_d, ("d_x", "d_g_z1", "d_g_z2"))):
                for k in keys:
                    if k in h:
                        label = None if id(ax) in labelled else "epoch means"
                        labelled.add(id(ax))
                        ax.hlines(h[k], lo, last, colors="black", lw=1.2, alpha=0.6, label=label)


def plot_nearest(generated, nearest, distances, out: str | Path) -> None:
    """Labelled pairs: generated images (top row) over their nearest training covers (bottom row),
    the RMS distance of each pair between them. Images are (k, 3, H, W) in [-1, 1]."""
    k = int(generated.shape[0])
    if k == 0:
        return
    fig, axes = pyplot().subplots(2, k, figsize=(1.25 * k + 1.4, 3.3), squeeze=False)
    for j in range(k):
        for row, images in enumerate((generated, nearest)):
            ax = axes[row][j]
            ax.imshow(((images[j].float().permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[1][j].set_title(f"d = {float(distances[j]):.3f}", fontsize=8)
    axes[0][0].set_ylabel("generated", fontsize=9)
    axes[1][0].set_ylabel("nearest\ntraining cover", fontsize=9)
    fig.suptitle("Generated images closest to a training cover (d: RMS pixel distance, [-1, 1], 32 px)", fontsize=9)
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
            if name == "curves.png":
                lines += [D_FAKE_LEGEND, ""]
            if name == "nearest.png":
                lines += ["Top row: the generated images closest to a training cover; bottom row: that training "
                          "cover, with the RMS distance (pixels in [-1, 1], 32 px) under each pair.", ""]
    if ev.get("warnings"):
        lines += ["## Training warnings", ""] + [f"- {w}" for w in ev["warnings"]] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
