"""Every command-line value checked in one place, before a command writes anything.

The CLI calls these right after parsing (and the training entry points call them again, so a
library caller gets the same one-line errors). Each failure is a UsageError: one line that
names the flag, exit code 2, and no file written, so a corrected rerun is never refused
because the first attempt left config.json behind.
"""

from __future__ import annotations

import math
import re
from typing import Any

from bookcover.errors import UsageError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
DEVICE_HELP = ("Where the model runs: auto (a CUDA GPU when one is visible, else the CPU), cpu, cuda, cuda:N "
               "or mps.")
_DEVICE = re.compile(r"(auto|cpu|mps|cuda)(?::(\d+))?")


def check_device(name: str, flag: str = "--device") -> str:
    """The device name if this machine can run it, else a one-line UsageError (never torch's traceback)."""
    text = str(name).strip().lower()
    match = _DEVICE.fullmatch(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise UsageError(f"{flag} {name}: not a device; use {DEVICE_CHOICES}")
    kind, index = match.group(1), match.group(2)
    if kind in ("auto", "cpu"):
        return text
    import torch

    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"{flag} {name}: no Apple MPS device is available; use --device cpu or auto")
        return text
    if not torch.cuda.is_available():
        raise UsageError(f"{flag} {name}: no CUDA GPU is visible; use --device cpu or auto")
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise UsageError(f"{flag} {name}: only {count} CUDA GPU{'s' * (count > 1)} visible (cuda:0 to cuda:{count - 1})")
    return text


def check_lr(lr: float, flag: str = "--lr") -> None:
    if not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"{flag} {lr:g}: the learning rate must be a positive number")


def merge_amp(amp: str | None, no_amp: bool) -> str | None:
    """--no-amp is --amp none; given beside any other --amp it contradicts it (never silently won)."""
    if not no_amp:
        return amp
    if amp not in (None, "none"):
        raise UsageError(f"--amp {amp} and --no-amp contradict each other: pass one of them")
    return "none"


def check_step_mode(step_mode: str, compile_flag: bool | None, device_name: str) -> None:
    """--step-mode and --compile/--no-compile must say the same thing; graph needs CUDA."""
    from bookcover.classifier.step import STEP_MODES

    if step_mode not in STEP_MODES:
        raise UsageError(f"--step-mode {step_mode}: choose from {', '.join(STEP_MODES)}")
    if compile_flag is True and step_mode not in ("auto", "compile"):
        raise UsageError(f"--step-mode {step_mode} and --compile contradict each other: pass one of them "
                         "(--compile is --step-mode compile)")
    if compile_flag is False and step_mode == "compile":
        raise UsageError("--step-mode compile and --no-compile contradict each other: pass one of them")
    if step_mode == "graph":
        from bookcover.devices import resolve_device

        if resolve_device(device_name).type != "cuda":
            raise UsageError("--step-mode graph needs a CUDA device; use --step-mode eager or compile on "
                             f"{resolve_device(device_name).type}")


def check_train_config(config: Any) -> None:
    """A classifier TrainConfig's values, checked before any data is decoded or file written."""
    from bookcover import coral

    check_device(config.device)
    check_lr(config.lr)
    if config.crop > config.image_size:
        raise UsageError(f"--crop {config.crop} is larger than --image-size {config.image_size}: covers are resized "
                         "to the image size before they are cropped")
    if config.amp not in ("auto", "bf16", "fp16", "none"):
        raise UsageError(f"--amp {config.amp}: choose auto, bf16, fp16 or none")
    if config.loss_impl not in coral.IMPLS:
        raise UsageError(f"--loss-impl {config.loss_impl}: choose from {', '.join(coral.IMPLS)}")
    check_step_mode(config.step_mode, config.compile, config.device)


GAN_AMP = ("auto", "bf16", "none")


def check_gan_config(config: Any) -> None:
    """A GanConfig's values, checked before any cover is decoded or file written."""
    from bookcover.gan.sampling import NOISES

    check_device(config.device)
    check_lr(config.lr)
    if config.noise not in NOISES:
        raise UsageError(f"--noise {config.noise}: choose {' or '.join(NOISES)}")
    if config.amp not in (*GAN_AMP, "on", "off"):  # on/off: what older runs recorded
        raise UsageError(f"--amp {config.amp}: choose {', '.join(GAN_AMP)}")
    if config.crop > min(config.cache_height, config.cache_width):
        raise UsageError(f"crop {config.crop} is larger than the cache's {config.cache_height} x {config.cache_width}")


def parse_fractions(text: str, flag: str = "--fractions") -> tuple[float, ...]:
    """'0.25,0.5,1' as shares of the training covers, each in (0, 1]."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        shares = tuple(float(p) for p in parts)
    except ValueError:
        raise UsageError(f"{flag} {text}: give numbers in (0, 1] separated by commas, e.g. 0.25,0.5,1") from None
    return check_fractions(shares, flag, text)


def check_fractions(shares: tuple[float, ...], flag: str = "--fractions", text: str | None = None) -> tuple[float, ...]:
    """Learning-curve shares: at least one, each in (0, 1]."""
    text = text if text is not None else ",".join(f"{f:g}" for f in shares)
    bad = [f"{f:g}" for f in shares if not (math.isfinite(f) and 0 < f <= 1)]
    if not shares or bad:
        what = f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not in (0, 1]" if bad else "no number given"
        raise UsageError(f"{flag} {text}: {what}; give shares of the training covers, e.g. 0.25,0.5,1")
    return tuple(shares)
