"""Device-side batches from uint8 NHWC covers: crop, flip, normalise, channels_last.

Everything happens on the tensor's device in a few vectorised ops, so a GPU-resident cache
never waits for a CPU data loader.
"""

from __future__ import annotations

import torch

# ImageNet statistics: a conventional choice for a ResNet trained from scratch on RGB covers.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalise(pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W) in channels_last memory format."""
    mean = torch.tensor(MEAN, device=pixels.device, dtype=dtype) * 255.0
    std = torch.tensor(STD, device=pixels.device, dtype=dtype) * 255.0
    x = (pixels.to(dtype) - mean) / std  # still NHWC, contiguous
    return x.permute(0, 3, 1, 2)  # an NCHW view whose strides are channels_last


def center_offset(full: int, crop: int) -> int:
    """torchvision CenterCrop's offset: round((full - crop) / 2)."""
    return int(round((full - crop) / 2.0))


def center_crop(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """Center crop uint8 (B, H, W, 3) to (B, crop, crop, 3)."""
    h, w = pixels.shape[1], pixels.shape[2]
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the cached {h}x{w} covers")
    top, left = center_offset(h, crop), center_offset(w, crop)
    return pixels[:, top : top + crop, left : left + crop]


def random_crop_flip(
    pixels: torch.Tensor, crop: int, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random crop (and optional horizontal flip) per image, in one gather."""
    b, h, w, _ = pixels.shape
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the cached {h}x{w} covers")
    dev = pixels.device
    top = torch.randint(0, h - crop + 1, (b,), generator=generator, device="cpu").to(dev)
    left = torch.randint(0, w - crop + 1, (b,), generator=generator, device="cpu").to(dev)
    steps = torch.arange(crop, device=dev)
    rows = top[:, None] + steps  # (B, crop)
    cols = left[:, None] + steps
    if flip:
        mirrored = torch.rand(b, generator=generator, device="cpu").to(dev) < 0.5
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=dev)[:, None, None]
    return pixels[batch, rows[:, :, None], cols[:, None, :]]


def train_batch(
    pixels: torch.Tensor, crop: int, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training input: random crop + flip, normalised, channels_last."""
    return normalise(random_crop_flip(pixels, crop, flip, generator))


def eval_batch(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """Evaluation input: center crop, normalised, channels_last."""
    return normalise(center_crop(pixels, crop))
