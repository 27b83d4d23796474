"""Offline evaluation of a GAN checkpoint: every measure beside real-vs-real and noise baselines.

The real covers (centre crops of the top levels) are split at random into two disjoint halves
A and B. Generated images, half B and uniform noise are each compared with half A, so the
generator's number sits between the best achievable (B: other real covers) and a worthless
generator (noise).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bookcover.errors import BookcoverError
from bookcover.gan.config import GanConfig
from bookcover.gan.data import GanCovers, eval_crops, load_gan_covers
from bookcover.gan.neighbours import mean_pairwise_distance, memorisation
from bookcover.gan.report import plot_nearest, write_gan_report
from bookcover.gan.sampling import generate, load_generator, make_noise, save_grid
from bookcover.gan.swd import swd
from bookcover.jsonio import write_json
from bookcover.outputs import check_out_dir, claim, prepare_out_dir, settle
from bookcover.resume import locate_recorded_data
from bookcover.runlog import METRICS_FILE, read_metrics

COMMAND = "gan evaluate"  # the name its output folders are recorded under (bookcover.outputs)
# What an evaluation writes (into its own folder, or a training run's at its end).
EVALUATION_OUTPUTS = ("evaluation.json", "report.md", "samples.png", "nearest.png")


# FID fits a d x d covariance to each feature set. From n samples it is biased upward by terms
# that shrink like 1/n (Chong and Forsyth, 2020; the mean term alone adds tr(S_a)/n + tr(S_b)/n),
# even between two samples of the same covers, and with n below d the covariances are not even
# full rank: the real-vs-real baseline is then far above 0 and a generator's FID is mostly that
# bias. Our rule of thumb trusts FID from FID_SAMPLES_PER_DIM samples per feature dimension
# (5,120 for the classifier's 512-d features). Below that, SWD is the measure to read: its
# descriptors are 7x7x3 = 147-d patches, 128 per image, so a few hundred images give tens of
# thousands of descriptors, compared slice by slice in 1-d.
FID_SAMPLES_PER_DIM = 10


def baseline_position(generated: float, real_vs_real: float, noise: float) -> float | None:
    """Where a generator's score sits from real-vs-real (0 %) to noise (100 %); None if they do not separate."""
    if not noise > real_vs_real:
        return None
    return 100 * (generated - real_vs_real) / (noise - real_vs_real)


def swd_verdict(swd_res: dict) -> str:
    """Where the generator's mean SWD sits between real-vs-real (0 %) and noise (100 %)."""
    gen, rr, noise = (swd_res[k]["mean"] for k in ("generated", "real_vs_real", "noise"))
    pos = baseline_position(gen, rr, noise)
    if pos is None:
        return f"the baselines do not separate (real-vs-real {rr:.2f} >= noise {noise:.2f}): too few images to judge."
    return (
        f"generated images score SWD {gen:.2f} against real-vs-real {rr:.2f} and noise {noise:.2f}: "
        f"{pos:.0f} % of the way from real covers to noise (0 % would be indistinguishable from real covers)."
    )


def fid_trusted(n: int, dim: int) -> bool:
    """Whether n samples per set are enough for FID on dim-d features (see FID_SAMPLES_PER_DIM)."""
    return n >= FID_SAMPLES_PER_DIM * dim


def which_to_trust(ev: dict) -> str:
    """One statement of which measure to read at this sample size and why, saying when SWD and FID disagree."""
    swd_pos = baseline_position(*(ev["swd"][k]["mean"] for k in ("generated", "real_vs_real", "noise")))
    fk = ev.get("fid_kid")
    if not fk:
        return "SWD is the measure here (no --classifier, so no FID/KID)."
    fid_pos = baseline_position(*(fk[k]["fid"] for k in ("generated", "real_vs_real", "noise")))
    n, dim = ev["n"], fk["dim"]
    swd_side = None if swd_pos is None else swd_pos <= 50
    fid_side = None if fid_pos is None else fid_pos <= 50
    agree = swd_side == fid_side
    where = (
        f"SWD puts the samples {_pct(swd_pos)} and FID {_pct(fid_pos)} of the way from real covers to noise"
        + ("" if agree else ", so they disagree")
    )
    if fid_trusted(n, dim):
        return f"{where}. With {n} images per set FID on {dim}-d features is well estimated: read both."
    return (
        f"{where}. Trust SWD: FID here fits {dim}-d covariances to {n} images (fewer than "
        f"{FID_SAMPLES_PER_DIM} x {dim}), so its estimation bias dominates (real-vs-real FID "
        f"{fk['real_vs_real']['fid']:.1f} instead of 0); SWD compares {n} x 128 patch descriptors and is stable at "
        "this size. KID is unbiased but noisy here (see its std)."
    )


def _pct(pos: float | None) -> str:
    return "n/a (baselines do not separate)" if pos is None else f"{pos:.0f} %"


def _fid_kid(classifier: str | Path, sets: dict[str, torch.Tensor], device, seed: int) -> dict:
    from bookcover.classifier import load_classifier
    from bookcover.gan.features import classifier_outputs, frechet_distance, kernel_inception_distance

    clf = load_classifier(classifier, str(device))
    feats = {k: classifier_outputs(clf, v)["features"].numpy() for k, v in sets.items()}
    out: dict = {"classifier": str(classifier), "dim": int(feats["real_a"].shape[1])}
    for key in ("generated", "real_vs_real", "noise"):
        other = feats["real_b" if key == "real_vs_real" else key]
        kid, kid_std = kernel_inception_distance(feats["real_a"], other, seed=seed)
        out[key] = {"fid": frechet_distance(feats["real_a"], other), "kid": kid, "kid_std": kid_std}
    return out


def _nearest_figure(generated: torch.Tensor, train: torch.Tensor, mem: dict, path: Path, k: int = 8) -> None:
    """Top row: the k generated images closest to a training cover; bottom row: that cover, labelled."""
    order = torch.argsort(mem["_distances"])[:k]
    plot_nearest(generated[order], train[mem["_nearest"][order]], mem["_distances"][order], path)


def evaluate_run(
    checkpoint: str | Path,
    out: str | Path,
    covers: GanCovers | None = None,
    data: str | Path | None = None,
    classifier: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    quiet: bool = False,
    device: torch.device | str = "auto",
    overwrite: bool = False,
) -> dict:
    """Evaluate G from checkpoint; write evaluation.json, report.md, samples.png, nearest.png to out.

    out follows the --out policy (bookcover.outputs): a new or empty folder, or with overwrite one
    holding only a previous evaluation. The training run evaluates itself with evaluate_into.
    """
    check_out_dir(out, COMMAND, overwrite=overwrite)
    if covers is None:  # a wrong checkpoint or missing data is refused before any file is touched
        covers = _real_covers(load_generator(checkpoint, "cpu").config, checkpoint, data, quiet)
    prepare_out_dir(out, COMMAND, overwrite=overwrite)
    return evaluate_into(checkpoint, out, covers, classifier=classifier, n=n, seed=seed, quiet=quiet, device=device)


def _real_covers(cfg: GanConfig, checkpoint: str | Path, data: str | Path | None, quiet: bool) -> GanCovers:
    """The covers the GAN trained on (found from here), or `data` instead."""
    recorded = str(data) if data is not None else locate_recorded_data(cfg.data, checkpoint)
    return load_gan_covers(GanConfig.from_dict({**cfg.to_dict(), "data": recorded}), quiet)


def evaluate_into(
    checkpoint: str | Path,
    out: str | Path,
    covers: GanCovers,
    *,
    classifier: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    quiet: bool = False,
    device: torch.device | str = "auto",
) -> dict:
    """evaluate_run's work on covers already loaded, written into a folder that already exists
    (the run's own, at the end of training)."""
    out = Path(out)
    loaded = load_generator(checkpoint, device)
    cfg: GanConfig = loaded.config
    real = eval_crops(covers.pixels, cfg.crop)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(real.shape[0], generator=gen)
    half = real.shape[0] // 2
    size = min(n or cfg.eval_samples, half)
    if size < 2:
        raise BookcoverError(f"need at least 4 real covers to evaluate, got {real.shape[0]}")
    idx_a, idx_b = perm[:size], perm[half : half + size]
    real_a, real_b = real[idx_a], real[idx_b]

    z = make_noise(size, cfg.nz, cfg.noise, gen)
    labels = torch.from_numpy(covers.classes)[idx_a] if cfg.num_classes else None  # the real level mix
    fake = generate(loaded.g, z, labels)
    noise = torch.rand(size, 3, cfg.crop, cfg.crop, generator=gen) * 2 - 1

    swd_res = {
        "generated": swd(fake, real_a, seed=seed),
        "real_vs_real": swd(real_b, real_a, seed=seed),
        "noise": swd(noise, real_a, seed=seed),
    }
    mem = memorisation(fake, real, real_a, real_b)
    claim(out, *EVALUATION_OUTPUTS)  # recorded in the folder's record (a run's own, or gan evaluate's)
    save_grid(fake[:64], out / "samples.png", nrow=8)
    _nearest_figure(fake, real, mem, out / "nearest.png")
    run_dir = Path(checkpoint).resolve().parent
    warnings = [w for h in read_metrics(run_dir / METRICS_FILE) for w in h.get("warnings", [])]
    ev = {
        "checkpoint": str(checkpoint),
        "epoch": int(loaded.checkpoint["epoch"]),
        "n": size,
        "real_covers": int(real.shape[0]),
        "seed": seed,
        "swd": swd_res,
        "swd_position": baseline_position(*(swd_res[k]["mean"] for k in ("generated", "real_vs_real", "noise"))),
        "verdict": swd_verdict(swd_res),
        "diversity": {"generated": mean_pairwise_distance(fake), "real": mean_pairwise_distance(real_a)},
        "memorisation": {k: v for k, v in mem.items() if not k.startswith("_")},
        "warnings": warnings,
    }
    if classifier is not None:
        ev["fid_kid"] = _fid_kid(
            classifier, {"real_a": real_a, "real_b": real_b, "generated": fake, "noise": noise}, device, seed
        )
        ev["fid_position"] = baseline_position(*(ev["fid_kid"][k]["fid"] for k in ("generated", "real_vs_real", "noise")))
    ev["trust"] = which_to_trust(ev)
    write_json(out / "evaluation.json", ev)
    write_gan_report(out, ev)
    settle(out, *EVALUATION_OUTPUTS)
    return ev
