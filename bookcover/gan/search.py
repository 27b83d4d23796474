"""Popularity-guided generation: sample many z, score each with a CORAL model, keep the best.

Beyond the study, which looked at random samples. The score is the CORAL expected level
sum_k P(level > k); the kept top-N are reported beside N random samples from the same pool,
so the report shows how much the search shifts the classifier's predicted level distribution
(and, read with the classifier's own test MAE, how little that may mean).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bookcover.classifier import Classifier
from bookcover.errors import BookcoverError
from bookcover.gan.features import classifier_outputs
from bookcover.gan.sampling import LoadedGan, generate, make_noise, save_grid
from bookcover.jsonio import write_json
from bookcover.outputs import check_out_dir, claim, prepare_out_dir, settle

COMMAND = "gan search"  # the name its output folders are recorded under (bookcover.outputs)
SEARCH_OUTPUTS = ("search_top.png", "search_random.png", "search.json", "search.md")

GENERATE_BATCH = 256


def level_histogram(rank: np.ndarray, num_levels: int) -> list[float]:
    """Fraction of images per predicted level 0..K-1."""
    counts = np.bincount(np.asarray(rank, dtype=np.int64), minlength=num_levels)
    return (counts / max(1, counts.sum())).tolist()


@torch.no_grad()
def score_images(clf: Classifier, images: torch.Tensor) -> dict[str, np.ndarray]:
    """CORAL probabilities P(level > k), predicted level and expected level of [-1, 1] images."""
    out = classifier_outputs(clf, images)
    return {"probas": out["probas"].numpy(), "rank": out["rank"].numpy().astype(np.int64), "expected": out["expected"].numpy()}


def search_popular(
    loaded: LoadedGan, clf: Classifier, out: str | Path, candidates: int = 2048, top: int = 64, seed: int = 0,
    quiet: bool = True,
    overwrite: bool = False,
) -> dict:
    """Keep the top-N of `candidates` samples by expected level; write grids, search.json and search.md.

    out follows the --out policy (bookcover.outputs).
    """
    if top < 1 or candidates < 2 * top:
        raise BookcoverError(f"need --candidates at least twice --top, got {candidates} and {top}")
    check_out_dir(out, COMMAND, overwrite=overwrite)
    cfg = loaded.config
    gen = torch.Generator().manual_seed(seed)
    z = make_noise(candidates, cfg.nz, cfg.noise, gen)
    labels = torch.randint(0, cfg.num_classes, (candidates,), generator=gen) if cfg.num_classes else None
    # Generated and scored in chunks of generate()'s own batch (BatchNorm uses batch statistics,
    # so the chunks give exactly the images one call would), with a progress bar.
    chunks, parts = [], []
    for a in tqdm(range(0, candidates, GENERATE_BATCH), desc="scoring candidates", unit="batch", disable=quiet):
        chunk = generate(loaded.g, z[a : a + GENERATE_BATCH], None if labels is None else labels[a : a + GENERATE_BATCH],
                         batch_size=GENERATE_BATCH)
        chunks.append(chunk)
        parts.append(score_images(clf, chunk))
    images = torch.cat(chunks)
    scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(-scores["expected"], kind="stable")
    best = order[:top]
    rand = np.arange(top)  # z were drawn i.i.d., so the first N are a random sample of the pool
    out = prepare_out_dir(out, COMMAND, overwrite=overwrite)
    claim(out, *SEARCH_OUTPUTS)
    nrow = 8 if top >= 8 else top
    save_grid(images[torch.from_numpy(best)], out / "search_top.png", nrow=nrow)
    save_grid(images[torch.from_numpy(rand)], out / "search_random.png", nrow=nrow)
    k = clf.num_levels
    res = {
        "candidates": candidates,
        "top": top,
        "seed": seed,
        "num_levels": k,
        "top_levels": level_histogram(scores["rank"][best], k),
        "random_levels": level_histogram(scores["rank"][rand], k),
        "all_levels": level_histogram(scores["rank"], k),
        "top_expected_mean": float(scores["expected"][best].mean()),
        "random_expected_mean": float(scores["expected"][rand].mean()),
        "best_z": z[torch.from_numpy(best[:8])].flatten(1).tolist(),
    }
    write_json(out / "search.json", res)
    head = "| predicted level | " + " | ".join(str(i) for i in range(k)) + " | mean expected level |"
    rows = [head, "|---|" + "---:|" * (k + 1)]
    for key, label in (
        ("top", f"top {top} of {candidates}"),
        ("random", f"{top} random"),
        ("all", f"all {candidates}"),
    ):
        hist = res[f"{key}_levels"]
        mean = {"top": res["top_expected_mean"], "random": res["random_expected_mean"]}.get(
            key, float(scores["expected"].mean())
        )
        rows.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in hist) + f" | {mean:.2f} |")
    md = [
        "# Most-popular-cover search",
        "",
        "Level K-1 is the most popular. Expected level = sum_k P(level > k).",
        "",
        *rows,
        "",
        "![top](search_top.png)",
        "",
        "![random](search_random.png)",
        "",
    ]
    (out / "search.md").write_text("\n".join(md))
    settle(out, *SEARCH_OUTPUTS)
    return res
