"""Noise, generation and grids: the one place that turns z into pictures in true colours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from bookcover.checkpoint import GAN_KIND, load_checkpoint
from bookcover.devices import resolve_device
from bookcover.errors import BookcoverError
from bookcover.gan.config import GanConfig
from bookcover.gan.model import Generator, build_gan
from bookcover.outputs import (
    OutPathError,
    check_out_dir,
    check_out_file,
    claim,
    prepare_out_dir,
    prepare_out_file,
    settle,
    settle_file,
)

NOISES = ("normal", "uniform")
GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
SAMPLE_COMMAND = "gan sample"  # the name its outputs are recorded under (bookcover.outputs)
IMAGES_FLAG = "--out's images folder"


def make_noise(n: int, nz: int, kind: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """z as (n, nz, 1, 1) on the CPU: N(0, 1) (the study's code) or U[0, 1) (the study's text).

    Drawn on the CPU from a seeded generator so that a seed means the same z on every device.
    """
    if kind == "normal":
        return torch.randn(n, nz, 1, 1, generator=generator)
    if kind == "uniform":
        return torch.rand(n, nz, 1, 1, generator=generator)
    raise BookcoverError(f"unknown noise {kind!r}; choose normal or uniform")


def level_rows(n_rows: int, per_row: int, num_classes: int) -> torch.Tensor:
    """Class labels for a grid with one row per level (cycling if there are more rows than levels)."""
    return torch.arange(n_rows).remainder(num_classes).repeat_interleave(per_row)


@torch.no_grad()
def generate(g: Generator, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
    """G(z) as float32 on the CPU, in [-1, 1].

    BatchNorm uses the batch's own statistics, as the study's code (the PyTorch DCGAN example)
    did when it drew its grids: the running averages lag far behind G on short runs. The
    running averages are left untouched (momentum 0), so sampling never changes the model.
    """
    device = next(g.parameters()).device
    bns = [m for m in g.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.train()
        m.momentum = 0.0
    out = []
    try:
        for a in range(0, z.shape[0], batch_size):
            lab = None if labels is None else labels[a : a + batch_size].to(device)
            out.append(g(z[a : a + batch_size].to(device), lab).float().cpu())
    finally:
        for m, (training, momentum, tracked) in zip(bns, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
    return torch.cat(out) if out else torch.zeros(0, 3, 64, 64)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """A grid PNG in true colours: [-1, 1] mapped to [0, 1] with value_range=(-1, 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)
    return path


def save_individual(images: torch.Tensor, folder: str | Path, quiet: bool = True) -> list[Path]:
    """One PNG per image (0001.png, ...), in true colours."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:04d}.png" for i in range(len(images))]
    claim(folder, *names)  # recorded in the folder's record, when it has one
    paths = []
    for name, img in zip(names, tqdm(images, desc="writing samples", unit="image", disable=quiet), strict=True):
        p = folder / name
        save_image(img, p, normalize=True, value_range=(-1, 1))
        paths.append(p)
    settle(folder, *names)
    return paths


@dataclass
class LoadedGan:
    """A generator from a GAN checkpoint plus the configuration it was trained with."""

    g: Generator
    config: GanConfig
    checkpoint: dict
    device: torch.device


def load_generator(path: str | Path, device: torch.device | str = "auto") -> LoadedGan:
    """Load G from last.pt of a GAN run (weights_only, kind-checked)."""
    ckpt = load_checkpoint(path, GAN_KIND, map_location="cpu")
    config = GanConfig.from_dict(ckpt["config"])
    g, _ = build_gan(config.nz, config.ngf, config.ndf, config.num_classes)
    g.load_state_dict(ckpt["generator"])
    dev = resolve_device(device) if isinstance(device, str) else device
    return LoadedGan(g.to(dev).eval(), config, ckpt, dev)


def sample_grid(
    loaded: LoadedGan, n: int, out: str | Path, seed: int = 0, nrow: int = 16, quiet: bool = True,
    overwrite: bool = False,
) -> dict:
    """n samples as a grid (16 per row, like the study's Figure 8) plus individual PNGs.

    A conditional GAN gets one row per level, least popular kept level first. The grid file
    and its <stem>_images/ folder follow the --out policy (bookcover.outputs): an existing grid,
    or images from an earlier draw, are written over only with overwrite, and only where their
    records (the folder's, and the grid's sibling .<name>.bookcover-outputs.json) say that
    gan sample wrote them, unchanged.
    """
    if n < 1:
        raise BookcoverError("--n must be at least 1")
    out = Path(out)
    if out.suffix.lower() not in GRID_SUFFIXES:
        raise OutPathError(f"--out {out}: name an image file for the grid (.png, .jpg, ...)")
    folder = out.with_name(out.stem + "_images")
    check_out_file(out, SAMPLE_COMMAND, overwrite=overwrite)
    check_out_dir(folder, SAMPLE_COMMAND, IMAGES_FLAG, overwrite=overwrite)
    cfg = loaded.config
    gen = torch.Generator().manual_seed(seed)
    labels = None
    if cfg.num_classes:
        per_row = max(1, n // cfg.num_classes)
        labels = level_rows(cfg.num_classes, per_row, cfg.num_classes)
        n, nrow = labels.numel(), per_row
    z = make_noise(n, cfg.nz, cfg.noise, gen)
    images = generate(loaded.g, z, labels)
    save_grid(images, prepare_out_file(out, SAMPLE_COMMAND, overwrite=overwrite), nrow=nrow)
    settle_file(out)
    files = save_individual(images, prepare_out_dir(folder, SAMPLE_COMMAND, IMAGES_FLAG, overwrite=overwrite),
                            quiet=quiet)
    return {"grid": str(out), "images": str(folder), "n": len(files), "nrow": nrow}
