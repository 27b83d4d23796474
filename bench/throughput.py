"""Training throughput: the training step as eager, compiled, channels_last, bf16 and CUDA graph.

One full training step each (device-side crop/flip/normalise from a resident uint8 cache,
ResNet-34 forward, CORAL loss, backward, Adam), measured side by side in one process. Every
variant but "before issue 10" runs `train`'s own step (bookcover.classifier.step.TrainStep):
the epoch's permutation and crops drawn on the device, no host sync inside a step, the
device synchronised only at the end of the timed steps. "before issue 10" is the step `train`
ran before: crops drawn on the CPU and copied each step, the dispatcher's checked loss, and a
finiteness check that reads the loss back every step.

The row marked "train's default" is the step `train` uses on this device by default (on CUDA:
the step captured in one CUDA graph). Also reported: the warm-up cost (the steps before timing,
including compilation or graph capture) and the projected time of the study's 200 epochs
(42,888 training covers an epoch).

    python bench/throughput.py --device cpu --batch 32 --steps 5 --json out.json
    python bench/throughput.py --device cuda                       # the GPU check's variants
    python bench/throughput.py --device cpu --variants eager "before issue 10"
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from bookcover import coral
from bookcover.classifier.model import CoralResNet34
from bookcover.classifier.step import GRAPH_WARMUP, TrainStep, epoch_draws, resolve_step_mode
from bookcover.classifier.train import resolve_amp
from bookcover.data.batches import apply_crops, draw_crops, normalise

STUDY_TRAIN_COVERS = 42_888  # 53,618 - 5 corrupt, remainder dropped, 80 % of 53,610
STUDY_IMG_PER_S = 570  # GTX 1080, 1.25 min an epoch
BF16 = torch.bfloat16
LEGACY = "before issue 10: eager + channels_last + bf16"

ALL_VARIANTS = [  # eager first: the ratios' base
    {"name": "eager", "mode": "eager", "channels_last": False, "amp": None},
    {"name": "eager + channels_last", "mode": "eager", "channels_last": True, "amp": None},
    {"name": "compiled", "mode": "compile", "channels_last": False, "amp": None},
    {"name": "compiled + channels_last", "mode": "compile", "channels_last": True, "amp": None},
    {"name": "eager + channels_last + bf16", "mode": "eager", "channels_last": True, "amp": BF16},
    {"name": "compiled + channels_last + bf16", "mode": "compile", "channels_last": True, "amp": BF16},
    {"name": "graph + channels_last + bf16", "mode": "graph", "channels_last": True, "amp": BF16},
    {"name": LEGACY, "mode": "legacy", "channels_last": True, "amp": BF16},
    {"name": "before issue 10: eager + channels_last", "mode": "legacy", "channels_last": True, "amp": None},
]


def real_or_random_pixels(n: int, size: int, device: torch.device) -> tuple[torch.Tensor, str]:
    """Covers from ../shared/data/goodreads-sample when present (through the cache), else noise."""
    sample = Path(__file__).resolve().parents[2] / "shared" / "data" / "goodreads-sample"
    if (sample / "book_data.csv").is_file():
        from bookcover.data.dataset import prepare_dataset

        ds = prepare_dataset(sample, size=(size, size), max_covers=n, quiet=True)
        return torch.from_numpy(ds.images(ds.select("all"))).to(device), "goodreads-sample"
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen).to(device), "random pixels"


def train_default(device: torch.device, crop: int = 120) -> dict:
    """The variant `train` runs on this device with its default flags (one process)."""
    amp = resolve_amp("auto", device, crop)
    mode = resolve_step_mode("auto", None, device, distributed=False, fp16=False)
    return {"name": f"train's default ({mode}, channels_last, {'bf16' if amp else 'fp32'})", "mode": mode,
            "channels_last": True, "amp": amp}


def variants(device: torch.device, names: list[str] | None = None) -> list[dict]:
    """The variants to time: by name, or the default set for the device.

    CUDA (the GPU check has minutes, and compile bought nothing there: 12,508 vs 12,929 img/s
    eager): eager, eager + channels_last + bf16, the pre-issue-10 step and the graph. CPU:
    the six eager/compiled combinations and the pre-issue-10 step.
    """
    by_name = {v["name"]: v for v in ALL_VARIANTS}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; choose from {list(by_name)}")
        return [by_name[n] for n in names]
    if device.type == "cuda":
        return [by_name[n] for n in ("eager", "eager + channels_last + bf16", LEGACY, "graph + channels_last + bf16")]
    return [v for v in ALL_VARIANTS if v["mode"] != "graph" and v["name"] != "before issue 10: eager + channels_last"]


def make_step(variant: dict, pixels: torch.Tensor, batch: int, crop: int):
    """One full training step of the variant, as a closure over its own model and optimiser."""
    device = pixels.device
    torch.manual_seed(0)
    model = CoralResNet34().to(device)
    if variant["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    graph = variant["mode"] == "graph"
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99), fused=device.type == "cuda", capturable=graph)
    labels = torch.randint(0, 5, (pixels.shape[0],), device=device)
    n, height, width = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    if variant["mode"] == "legacy":
        return _legacy_step(model, opt, pixels, labels, batch, crop, variant["amp"])
    loss_fn = functools.partial(coral.coral_loss, impl="auto")
    runner = TrainStep(model, model, opt, loss_fn, pixels, labels, crop, mode=variant["mode"], amp_dtype=variant["amp"],
                       channels_last=variant["channels_last"])
    state = {"epoch": 0, "pos": n}

    def step() -> None:
        if state["pos"] + batch > n:  # a new epoch's draws, on the device, as train does
            state["perm"], state["crops"] = epoch_draws(n, height, width, crop, True, 1, state["epoch"], device)
            state["epoch"], state["pos"] = state["epoch"] + 1, 0
        a, b = state["pos"], state["pos"] + batch
        runner(state["perm"][a:b], state["crops"][a:b])
        state["pos"] = b

    return step


def _legacy_step(model, opt, pixels, labels, batch, crop, amp):
    """The step `train` ran before issue 10: host-drawn crops copied per step, the dispatcher's
    checked loss and ``if not torch.isfinite(loss)`` every step (each reads the device)."""
    device = pixels.device
    gen = torch.Generator().manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, pixels.shape[0], (batch,), generator=gen)
        crops = draw_crops(batch, pixels.shape[1], pixels.shape[2], crop, True, gen)
        idx = idx.to(device, non_blocking=True)
        x = normalise(apply_crops(pixels[idx], crop, crops))
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logit = model(x)
        loss = coral.coral_loss(logit.float(), model.coral_bias, labels[idx])
        if not torch.isfinite(loss):
            raise RuntimeError("loss diverged")
        loss.backward()
        opt.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(variants_: list[dict], pixels: torch.Tensor, batch: int, crop: int, steps: int, rounds: int = 1) -> list[dict]:
    """img/s of each variant over ``steps`` timed steps, after warm-up steps (compilation, graph
    capture) timed apart. With ``rounds`` > 1 the variants take turns, ``steps`` steps each per
    round, and each reports its median round: load from other processes hits them all alike."""
    device = pixels.device
    rows, live = [], []
    for v in variants_:
        step = make_step(v, pixels, batch, crop)
        warmup = GRAPH_WARMUP + 2 if v["mode"] == "graph" else 2  # the graph captures at step GRAPH_WARMUP + 1
        t0 = time.perf_counter()
        step()
        _sync(device)
        first = time.perf_counter() - t0
        for _ in range(warmup - 1):
            step()
        _sync(device)
        row = {"variant": v["name"], "mode": v["mode"], "first_step_s": first, "warmup_s": time.perf_counter() - t0,
               "warmup_steps": warmup, "rounds": rounds, "seconds": []}
        rows.append(row)
        if rounds == 1:  # time it now, and free its model before the next variant is built
            row["seconds"].append(_timed(step, steps, device))
        else:
            live.append((row, step))
    for _ in range(rounds if rounds > 1 else 0):
        for row, step in live:
            row["seconds"].append(_timed(step, steps, device))
    for row in rows:
        ips = batch * steps / statistics.median(row.pop("seconds"))
        row.update(img_per_s=ips, projected_200_epochs_h=STUDY_TRAIN_COVERS * 200 / ips / 3600)
    return rows


def _timed(step, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - t0


def table(rows: list[dict]) -> str:
    base = rows[0]["img_per_s"]
    lines = ["| variant | img/s | vs eager | first step (s) | warm-up (s) | study's 200 epochs (h) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['img_per_s']:.1f} | {r['img_per_s'] / base:.2f}x | {r['first_step_s']:.1f} "
                     f"| {r['warmup_s']:.1f} | {r['projected_200_epochs_h']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None, help="default 256 on CUDA, 32 on CPU")
    ap.add_argument("--crop", type=int, default=120)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 30 CUDA, 5 CPU)")
    ap.add_argument("--covers", type=int, default=2048)
    ap.add_argument("--image-size", type=int, default=128, help="cache size the crops come from")
    ap.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                    help="variants to time, by name (default: the device's set; see ALL_VARIANTS)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="> 1: the variants take turns, --steps each per round; medians (for a busy machine)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    steps = args.steps or (30 if device.type == "cuda" else 5)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as train sets it
    pixels, source = real_or_random_pixels(args.covers, args.image_size, device)
    default = train_default(device, args.crop)
    chosen = variants(device, args.variants)
    if not args.variants and not any(_same(v, default) for v in chosen):
        chosen.append(default)
    rows = measure(chosen, pixels, batch, args.crop, steps, args.rounds)
    default_row = next((r for r, v in zip(rows, chosen, strict=True) if _same(v, default)), None)
    if default_row is not None:
        default_row["variant"] += " (train's default)"
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    rounds = f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"training throughput at {args.crop} px, batch {batch}, {steps} timed steps{rounds}, {source}, on {machine}")
    print(table(rows))
    if default_row is not None:
        print(f"train's default step here: {default['name']}: {default_row['img_per_s']:.0f} img/s")
    print(f"(the study: about {STUDY_IMG_PER_S} img/s on a GTX 1080, about 4 h for 200 epochs)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "batch": batch, "crop": args.crop, "source": source,
                                         "steps": steps, "train_default": default_row, "rows": rows}, indent=2))


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in ("mode", "channels_last", "amp"))


if __name__ == "__main__":
    main()
