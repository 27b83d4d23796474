"""The GAN's real covers: the top levels of the decode-once cache, cropped and scaled to [-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bookcover.data.batches import center_crop, random_crop_flip
from bookcover.data.dataset import prepare_dataset
from bookcover.data.defaults import synthetic_default
from bookcover.errors import DataError
from bookcover.gan.config import GanConfig


@dataclass
class GanCovers:
    """uint8 (N, H, W, 3) covers of the top levels, with their level and class (level - lowest kept)."""

    pixels: np.ndarray
    levels: np.ndarray
    num_levels: int
    top_levels: int
    data_path: str

    @property
    def classes(self) -> np.ndarray:
        """0..top_levels-1: the conditional GAN's label (top_levels - 1 = most popular)."""
        return self.levels - (self.num_levels - self.top_levels)

    def summary(self) -> dict:
        return {
            "covers": int(self.levels.size),
            "levels_kept": list(range(self.num_levels - self.top_levels, self.num_levels)),
            "per_level": {int(k): int((self.levels == k).sum()) for k in np.unique(self.levels)},
            "cache_size": list(self.pixels.shape[1:3]),
            "data": self.data_path,
        }


def resolve_gan_data(config: GanConfig, quiet: bool = False) -> str:
    """The user's data folder, or the synthetic default (generated once per n and seed)."""
    if config.data is not None:
        return config.data
    return str(synthetic_default(config.synth_n, config.seed, quiet=quiet))


def load_gan_covers(config: GanConfig, quiet: bool = False) -> GanCovers:
    """All covers (every split, as in the study) of the config's top popularity levels."""
    if not 1 <= config.top_levels <= config.num_levels:
        raise DataError(f"top_levels must be in 1..{config.num_levels}, got {config.top_levels}")
    path = resolve_gan_data(config, quiet)
    ds = prepare_dataset(
        path,
        size=(config.cache_height, config.cache_width),
        num_levels=config.num_levels,
        seed=config.seed,
        score_column=config.score_column,
        max_covers=config.max_covers,
        quiet=quiet,
    )
    keep = np.flatnonzero(ds.labels >= config.num_levels - config.top_levels)
    if keep.size < 2:
        raise DataError(f"{path}: only {keep.size} covers in the top {config.top_levels} levels; use more covers")
    if config.crop > min(config.cache_height, config.cache_width):
        raise DataError(f"crop {config.crop} is larger than the {config.cache_height}x{config.cache_width} cache")
    return GanCovers(ds.images(keep), ds.labels[keep].astype(np.int64), config.num_levels, config.top_levels, path)


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], as ToTensor + Normalize(0.5, 0.5)."""
    return pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_crops(pixels: torch.Tensor, crop: int, generator: torch.Generator | None) -> torch.Tensor:
    """The study's RandomCrop(64) on the short-edge-80 covers (no flip), scaled to [-1, 1]."""
    return to_unit_range(random_crop_flip(pixels, crop, flip=False, generator=generator))


def eval_crops(pixels: np.ndarray | torch.Tensor, crop: int) -> torch.Tensor:
    """Deterministic centre crops in [-1, 1]: the real side of every evaluation."""
    return to_unit_range(center_crop(torch.as_tensor(np.asarray(pixels)), crop))
