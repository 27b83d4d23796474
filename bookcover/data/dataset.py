"""A decoded cache plus its ordinal labels and split: what training and evaluation consume."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from bookcover.data.cache import CoverCache, build_cache
from bookcover.data.defaults import synthetic_default
from bookcover.data.levels import SPLIT_NAMES, TRAIN, UNUSED, assign_levels, stratified_split
from bookcover.data.sources import Manifest, read_dataset
from bookcover.errors import DataError


@dataclass
class LabelledCovers:
    """Readable covers with level labels (K-1 = most popular) and a train/val/test split."""

    cache: CoverCache
    rows: np.ndarray  # indices into cache.images
    labels: np.ndarray  # int64, 0..num_levels-1
    split: np.ndarray  # int8: 0 train, 1 val, 2 test
    num_levels: int

    def __len__(self) -> int:
        return int(self.rows.size)

    def select(self, split: str) -> np.ndarray:
        """Positions (into rows/labels) of one split, or of all covers for split='all'."""
        if split == "all":
            return np.arange(self.rows.size)
        if split not in SPLIT_NAMES:
            raise DataError(f"unknown split {split!r}; use train, val, test or all")
        return np.flatnonzero(self.split == SPLIT_NAMES[split])

    def images(self, positions: np.ndarray) -> np.ndarray:
        """uint8 (n, H, W, 3) for the given positions, read from the memory map."""
        return np.asarray(self.cache.images[self.rows[positions]])

    def summary(self) -> dict:
        counts = {name: int((self.split == code).sum()) for name, code in SPLIT_NAMES.items()}
        per_level = np.bincount(self.labels, minlength=self.num_levels).tolist()
        return {
            "covers": len(self),
            "skipped": len(self.cache.skipped),
            "levels": self.num_levels,
            "per_level": per_level,
            "split": counts,
            "image_size": list(self.cache.size),
        }

    def keep_train_fraction(self, fraction: float, seed: int) -> LabelledCovers:
        """The same covers with only `fraction` of the train split kept (per level, seeded);
        the rest are set aside (UNUSED), val and test are untouched. For learning curves."""
        if not 0 < fraction <= 1:
            raise DataError(f"train fraction must be in (0, 1], got {fraction}")
        if fraction == 1:
            return self
        split = self.split.copy()
        rng = np.random.default_rng(seed + 7_777)
        for level in np.unique(self.labels):
            idx = np.flatnonzero((split == TRAIN) & (self.labels == level))
            drop = rng.permutation(idx)[max(1, int(round(fraction * idx.size))) :]
            split[drop] = UNUSED
        return LabelledCovers(self.cache, self.rows, self.labels, split, self.num_levels)

    def write_skipped(self, path: str | Path) -> None:
        """List every unreadable cover (path, reason): the study had to drop 5."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "reason"])
            writer.writerows(self.cache.skipped)


def evenly_by_rank(manifest: Manifest, max_covers: int | None) -> Manifest:
    """Keep at most max_covers items spread evenly over the popularity ranking."""
    if max_covers is None or max_covers >= len(manifest):
        return manifest
    order = np.argsort(-manifest.scores, kind="stable")
    pick = order[np.linspace(0, order.size - 1, max_covers).round().astype(int)]
    return manifest.subset(np.sort(np.unique(pick)))


def prepare_dataset(
    data: str | Path,
    *,
    size: tuple[int, int] = (128, 128),
    num_levels: int = 5,
    drop_remainder: bool = True,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    score_column: str | None = None,
    max_covers: int | None = None,
    cache_root: str | Path | None = None,
    quiet: bool = False,
) -> LabelledCovers:
    """Read the source, decode once into the cache, then rank -> level -> stratified split."""
    manifest = evenly_by_rank(read_dataset(data, score_column), max_covers)
    cache = build_cache(manifest, size=size, cache_root=cache_root, quiet=quiet)
    rows, labels = assign_levels(manifest_scores(manifest, cache), num_levels, drop_remainder)
    split = stratified_split(labels, fractions, seed)
    return LabelledCovers(cache, rows, labels, split, num_levels)


def manifest_scores(manifest: Manifest, cache: CoverCache) -> np.ndarray:
    """The manifest's scores for the cache's covers, in cache order.

    The cache is keyed on the cover files alone, so one built while ranking by list order is
    reused when ranking by a column: its stored scores are those of the first build, and only
    the manifest knows the scores asked for now.
    """
    by_path = dict(zip(manifest.paths, manifest.scores.tolist(), strict=True))
    return np.asarray([by_path[p] for p in cache.paths], dtype=np.float64)


def prepare_given_levels(
    data: str | Path,
    level_column: str,
    *,
    size: tuple[int, int] = (128, 128),
    num_levels: int = 5,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    cache_root: str | Path | None = None,
    quiet: bool = False,
) -> LabelledCovers:
    """Covers labelled by a column of their CSV (integers 0..num_levels-1), not re-ranked.

    For scoring a model against the levels a set came with (e.g. levels from another list's
    positions): every row must carry an integer level in range, else DataError names the first
    offending row. The split is still stratified by seed, for callers that want slices.
    """
    manifest = read_dataset(data, level_column)
    bad_rows = [(p, why) for p, why in manifest.skipped if level_column in why]
    where = f"level column {level_column!r} of {data}"
    if bad_rows:
        raise DataError(f"{where}: {bad_rows[0][0]} has a missing or non-numeric level; "
                        f"levels must be integers 0..{num_levels - 1}")
    values = manifest.scores
    wrong = np.flatnonzero((values != np.round(values)) | (values < 0) | (values > num_levels - 1))
    if wrong.size:
        i = int(wrong[0])
        raise DataError(f"{where}: {manifest.paths[i]} has level {values[i]:g}; "
                        f"levels must be integers 0..{num_levels - 1}")
    cache = build_cache(manifest, size=size, cache_root=cache_root, quiet=quiet)
    labels = manifest_scores(manifest, cache).astype(np.int64)
    rows = np.arange(labels.size)
    if labels.size == 0:
        raise DataError(f"{data}: no readable covers")
    split = stratified_split(labels, fractions, seed)
    return LabelledCovers(cache, rows, labels, split, num_levels)


class CoverSpec(Protocol):
    """What a run's configuration says about its covers (a classifier's TrainConfig has it all)."""

    data: str | None  # None: the embedded synthetic covers
    synth_n: int
    seed: int
    image_size: int
    num_levels: int
    drop_remainder: bool
    score_column: str | None
    max_covers: int | None
    # optional: train_fraction (float, default 1.0) keeps that share of the train split


def resolve_source(spec: CoverSpec, quiet: bool = False) -> str:
    """The data folder a run reads: the user's, or the synthetic default (generated once)."""
    if spec.data is not None:
        return spec.data
    return str(synthetic_default(spec.synth_n, spec.seed, quiet=quiet))


def load_labelled(spec: CoverSpec, quiet: bool = False) -> LabelledCovers:
    """The labelled, split covers a run's configuration implies: same levels, same split by seed."""
    covers = prepare_dataset(
        resolve_source(spec, quiet),
        size=(spec.image_size, spec.image_size),
        num_levels=spec.num_levels,
        drop_remainder=spec.drop_remainder,
        seed=spec.seed,
        score_column=spec.score_column,
        max_covers=spec.max_covers,
        quiet=quiet,
    )
    return covers.keep_train_fraction(getattr(spec, "train_fraction", 1.0), spec.seed)
