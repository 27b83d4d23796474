"""Device-side batches from uint8 NHWC covers: crop, flip, normalise, channels_last.

Everything happens on the tensor's device in a few vectorised ops, so a GPU-resident cache
never waits for a CPU data loader.
"""

from __future__ import annotations

import torch

# ImageNet statistics: a conventional choice for a ResNet trained from scratch on RGB covers.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def norm_stats(device: torch.device | str, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """MEAN and STD scaled to uint8 pixel units, as tensors on ``device``.

    Made once outside a captured CUDA graph: building them inside would copy from host memory.
    """
    return (torch.tensor(MEAN, device=device, dtype=dtype) * 255.0, torch.tensor(STD, device=device, dtype=dtype) * 255.0)


def normalise(
    pixels: torch.Tensor, dtype: torch.dtype = torch.float32, stats: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W) in channels_last memory format.

    ``stats``: (mean, std) from :func:`norm_stats`, to reuse instead of building them per call.
    """
    mean, std = stats if stats is not None else norm_stats(pixels.device, dtype)
    x = (pixels.to(dtype) - mean) / std  # still NHWC, contiguous
    return x.permute(0, 3, 1, 2)  # an NCHW view whose strides are channels_last


def center_offset(full: int, crop: int) -> int:
    """torchvision CenterCrop's offset, round((full - crop) / 2): the consumer's (export/predict.py),
    so that training evaluation and production crop the same pixels."""
    from bookcover.consumer import load_consumer

    return load_consumer().center_offset(full, crop)


def center_crop(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """Center crop uint8 (B, H, W, 3) to (B, crop, crop, 3)."""
    h, w = pixels.shape[1], pixels.shape[2]
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the cached {h}x{w} covers")
    top, left = center_offset(h, crop), center_offset(w, crop)
    return pixels[:, top : top + crop, left : left + crop]


def draw_crops(
    b: int, height: int, width: int, crop: int, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop offsets and flips for b images: int64 (b, 3) rows of (top, left, mirrored).

    Drawn on the generator's device (the CPU without one). Training draws a whole epoch at
    once, so a DDP rank that takes a slice gets exactly the crops a single process would have
    used for those images, and nothing is copied from the host per step.
    """
    if crop > height or crop > width:
        raise ValueError(f"crop {crop} is larger than the cached {height}x{width} covers")
    device = generator.device if generator is not None else None
    top = torch.randint(0, height - crop + 1, (b,), generator=generator, device=device)
    left = torch.randint(0, width - crop + 1, (b,), generator=generator, device=device)
    if flip:
        mirrored = torch.rand(b, generator=generator, device=device) < 0.5
    else:
        mirrored = torch.zeros(b, dtype=torch.bool, device=device)
    return torch.stack([top, left, mirrored.long()], dim=1)


def apply_crops(pixels: torch.Tensor, crop: int, params: torch.Tensor) -> torch.Tensor:
    """Crop (and mirror) each uint8 (B, H, W, 3) image by its (top, left, mirrored) row, in one gather."""
    dev = pixels.device
    params = params.to(dev)
    steps = torch.arange(crop, device=dev)
    rows = params[:, 0:1] + steps  # (B, crop)
    cols = params[:, 1:2] + steps
    cols = torch.where(params[:, 2:3].bool(), cols.flip(1), cols)
    batch = torch.arange(pixels.shape[0], device=dev)[:, None, None]
    return pixels[batch, rows[:, :, None], cols[:, None, :]]


def random_crop_flip(
    pixels: torch.Tensor, crop: int, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random crop (and optional horizontal flip) per image."""
    b, h, w, _ = pixels.shape
    return apply_crops(pixels, crop, draw_crops(b, h, w, crop, flip, generator))


def train_batch(
    pixels: torch.Tensor, crop: int, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training input: random crop + flip, normalised, channels_last."""
    return normalise(random_crop_flip(pixels, crop, flip, generator))


def eval_batch(pixels: torch.Tensor, crop: int) -> torch.Tensor:
    """Evaluation input: center crop, normalised, channels_last."""
    return normalise(center_crop(pixels, crop))
