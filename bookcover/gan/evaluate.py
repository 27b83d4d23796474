"""Offline evaluation of a GAN checkpoint: every measure beside real-vs-real and noise baselines.

The real covers (centre crops of the top levels) are split at random into two disjoint halves
A and B. Generated images, half B and uniform noise are each compared with half A, so the
generator's number sits between the best achievable (B: other real covers) and a worthless
generator (noise).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bookcover.errors import BookcoverError
from bookcover.gan.config import GanConfig
from bookcover.gan.data import GanCovers, eval_crops, load_gan_covers
from bookcover.gan.neighbours import mean_pairwise_distance, memorisation
from bookcover.gan.report import write_gan_report
from bookcover.gan.sampling import generate, load_generator, make_noise, save_grid
from bookcover.gan.swd import swd
from bookcover.runs import METRICS_FILE, read_metrics


def swd_verdict(swd_res: dict) -> str:
    """Where the generator's mean SWD sits between real-vs-real (0 %) and noise (100 %)."""
    gen, rr, noise = (swd_res[k]["mean"] for k in ("generated", "real_vs_real", "noise"))
    if noise <= rr:
        return f"the baselines do not separate (real-vs-real {rr:.2f} >= noise {noise:.2f}): too few images to judge."
    pos = 100 * (gen - rr) / (noise - rr)
    return (
        f"generated images score SWD {gen:.2f} against real-vs-real {rr:.2f} and noise {noise:.2f}: "
        f"{pos:.0f} % of the way from real covers to noise (0 % would be indistinguishable from real covers)."
    )


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
    """Top row: the k generated images closest to a training cover; bottom row: that cover."""
    order = torch.argsort(mem["_distances"])[:k]
    pairs = torch.cat([generated[order], train[mem["_nearest"][order]]])
    save_grid(pairs, path, nrow=order.numel())


def evaluate_run(
    checkpoint: str | Path,
    out: str | Path,
    covers: GanCovers | None = None,
    data: str | Path | None = None,
    classifier: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    quiet: bool = False,
    device: torch.device | str = "cpu",
) -> dict:
    """Evaluate G from checkpoint; write evaluation.json, report.md, samples.png, nearest.png to out."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_generator(checkpoint, device)
    cfg: GanConfig = loaded.config
    if covers is None:
        if data is not None:
            cfg = GanConfig.from_dict({**cfg.to_dict(), "data": str(data)})
        covers = load_gan_covers(cfg, quiet)
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
        "verdict": swd_verdict(swd_res),
        "diversity": {"generated": mean_pairwise_distance(fake), "real": mean_pairwise_distance(real_a)},
        "memorisation": {k: v for k, v in mem.items() if not k.startswith("_")},
        "warnings": warnings,
    }
    if classifier is not None:
        ev["fid_kid"] = _fid_kid(
            classifier, {"real_a": real_a, "real_b": real_b, "generated": fake, "noise": noise}, device, seed
        )
    (out / "evaluation.json").write_text(json.dumps(ev, indent=2))
    write_gan_report(out, ev)
    return ev
