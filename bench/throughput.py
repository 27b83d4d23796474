"""Training throughput: eager vs compiled vs compiled + channels_last (+ AMP on CUDA).

One full training step each (device-side crop/flip/normalise from a resident uint8 cache,
ResNet-34 forward, CORAL loss, backward, Adam), measured side by side in one process.
Also the compile cost (time to the first step) and the projected time of the study's
200-epoch schedule (42,888 training covers a epoch).

    python bench/throughput.py --device cpu --batch 32 --steps 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from bookcover.classifier.model import CoralResNet34
from bookcover.coral import coral_loss
from bookcover.data.batches import apply_crops, draw_crops, normalise

STUDY_TRAIN_COVERS = 42_888  # 53,618 - 5 corrupt, remainder dropped, 80 % of 53,610
STUDY_IMG_PER_S = 570  # GTX 1080, 1.25 min an epoch


def real_or_random_pixels(n: int, size: int, device: torch.device) -> tuple[torch.Tensor, str]:
    """Covers from ../shared/data/goodreads-sample when present (through the cache), else noise."""
    sample = Path(__file__).resolve().parents[2] / "shared" / "data" / "goodreads-sample"
    if (sample / "book_data.csv").is_file():
        from bookcover.data.dataset import prepare_dataset

        ds = prepare_dataset(sample, size=(size, size), max_covers=n, quiet=True)
        return torch.from_numpy(ds.images(ds.select("all"))).to(device), "goodreads-sample"
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen).to(device), "random pixels"


def variants(device: torch.device) -> list[dict]:
    """eager first (the ratios' base), then each speed-up alone and combined."""
    rows = [
        {"name": "eager", "compile": False, "channels_last": False, "amp": None},
        {"name": "eager + channels_last", "compile": False, "channels_last": True, "amp": None},
        {"name": "compiled", "compile": True, "channels_last": False, "amp": None},
        {"name": "compiled + channels_last", "compile": True, "channels_last": True, "amp": None},
        {"name": "eager + channels_last + bf16", "compile": False, "channels_last": True, "amp": torch.bfloat16},
        {"name": "compiled + channels_last + bf16", "compile": True, "channels_last": True, "amp": torch.bfloat16},
    ]
    if device.type == "cuda":  # the GPU check has minutes, not hours: each compile costs about one
        rows = [rows[0], rows[4], rows[5]]
    return rows


def make_step(variant: dict, pixels: torch.Tensor, batch: int, crop: int):
    """One full training step of the given variant, as a closure (model and optimiser inside)."""
    device = pixels.device
    torch.manual_seed(0)
    model = CoralResNet34().to(device)
    if variant["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99), fused=device.type == "cuda")
    fwd = torch.compile(model) if variant["compile"] else model
    labels = torch.randint(0, 5, (pixels.shape[0],), device=device)
    gen = torch.Generator().manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, pixels.shape[0], (batch,), generator=gen).to(device)
        x = normalise(apply_crops(pixels[idx], crop, draw_crops(batch, pixels.shape[1], pixels.shape[2], crop, True, gen)))
        if not variant["channels_last"]:
            x = x.contiguous()
        with torch.autocast(device.type, dtype=variant["amp"] or torch.float32, enabled=variant["amp"] is not None):
            logit = fwd(x)
        loss = coral_loss(logit.float(), model.coral_bias, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def measure(variant: dict, pixels: torch.Tensor, batch: int, crop: int, steps: int, warmup: int = 2) -> dict:
    """img/s of the full training step, and seconds to the end of the first (compiling) step."""
    step = make_step(variant, pixels, batch, crop)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ips = batch * steps / (time.perf_counter() - t0)
    return {"variant": variant["name"], "img_per_s": ips, "first_step_s": first,
            "projected_200_epochs_h": STUDY_TRAIN_COVERS * 200 / ips / 3600}


def table(rows: list[dict]) -> str:
    base = rows[0]["img_per_s"]
    lines = ["| variant | img/s | vs eager | first step (s) | study's 200 epochs (h) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['img_per_s']:.1f} | {r['img_per_s'] / base:.2f}x | {r['first_step_s']:.1f} "
                     f"| {r['projected_200_epochs_h']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="default 256 on CUDA, 32 on CPU")
    ap.add_argument("--crop", type=int, default=120)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 30 CUDA, 5 CPU)")
    ap.add_argument("--covers", type=int, default=2048)
    ap.add_argument("--image-size", type=int, default=128, help="cache size the crops come from")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    steps = args.steps or (30 if device.type == "cuda" else 5)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    pixels, source = real_or_random_pixels(args.covers, args.image_size, device)
    rows = [measure(v, pixels, batch, args.crop, steps) for v in variants(device)]
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"training throughput at {args.crop} px, batch {batch}, {steps} timed steps, {source}, on {machine}")
    print(table(rows))
    print(f"(the study: about {STUDY_IMG_PER_S} img/s on a GTX 1080, about 4 h for 200 epochs)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "batch": batch, "crop": args.crop, "source": source, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
