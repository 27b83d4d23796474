"""The CORAL-CNN training loop: cache -> device batches -> ResNet-34 -> CORAL loss -> checkpoints.

One run directory holds config.json, metrics.jsonl, last.pt/best.pt (atomic), curves.png,
confusion.png, skipped_covers.csv, results.json and report.md. A killed run resumes from
last.pt; every epoch's shuffling, crops and dropout are seeded from (seed, epoch), so a resumed
run on CPU repeats exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import bookcover
from bookcover import coral
from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint, save_atomic
from bookcover.classifier import batchnorm, distributed
from bookcover.classifier.config import TrainConfig
from bookcover.classifier.evaluate import evaluate_splits, test_metrics_record
from bookcover.classifier.metrics import baselines, ordinal_metrics
from bookcover.classifier.model import load_backbone_init
from bookcover.classifier.predict import build_model, predict_pixels
from bookcover.classifier.report import plot_confusion, plot_curves, write_report
from bookcover.classifier.schedule import attach_schedule, make_optimizer
from bookcover.data.batches import MEAN, STD, apply_crops, draw_crops, normalise
from bookcover.data.dataset import LabelledCovers, load_labelled, resolve_source
from bookcover.devices import resolve_device
from bookcover.errors import BookcoverError, TrainingDiverged
from bookcover.runs import METRICS_FILE, append_metrics, rewind_metrics, write_config

StepHook = Callable[[int, int], None]


def preprocess_spec(config: TrainConfig) -> dict:
    """How a cover becomes model input; export and the torch-free consumer follow it exactly."""
    return {
        "resize": [config.image_size, config.image_size],
        "resize_filter": "PIL bilinear, aspect ratio ignored",
        "crop": config.crop,
        "crop_kind": "center, offset round((size - crop) / 2)",
        "dtype": "uint8",
        "layout": "NHWC RGB",
        "mean": [m * 255 for m in MEAN],
        "std": [s * 255 for s in STD],
    }


def _checkpoint(model, optimizer, config, epoch, best_val_mae, data_summary) -> dict:
    return {
        "kind": CLASSIFIER_KIND,
        "format": 1,
        "version": bookcover.__version__,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "config": config.to_dict(),
        "best_val_mae": best_val_mae,
        "data_summary": data_summary,
        "preprocess": preprocess_spec(config),
    }


def _loss_fn(config: TrainConfig):
    """The CORAL loss with config.loss_impl; looks up coral.coral_loss at call time (patchable)."""
    if config.loss_impl not in coral.IMPLS:
        raise BookcoverError(f"unknown --loss-impl {config.loss_impl!r}; choose from {', '.join(coral.IMPLS)}")
    impl = config.loss_impl

    def loss_fn(logit, bias, labels, task_weights):
        return coral.coral_loss(logit, bias, labels, task_weights, impl=impl)

    return loss_fn


def cpu_has_native_bf16() -> bool:
    """AMX or AVX-512 BF16: the CPUs where bf16 autocast measurably speeds training up."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)() or
                getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())


CPU_BF16_MIN_CROP = 96  # bench/RESULTS.md: bf16 was 2.05x eager at 120 px, 0.97x at 64 px


def resolve_amp(amp: str, device: torch.device, crop: int = 120) -> torch.dtype | None:
    """The autocast dtype. auto: bf16 on CUDA; on CPU only where it measurably helps: native bf16
    (AMX / AVX-512 BF16) and crops of at least CPU_BF16_MIN_CROP px."""
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        if device.type == "cpu" and crop >= CPU_BF16_MIN_CROP and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    if amp not in choices:
        raise BookcoverError(f"unknown --amp {amp!r}; choose auto, bf16, fp16 or none")
    return choices[amp]


def resolve_compile(flag: bool | None, device: torch.device) -> bool:
    return device.type == "cuda" if flag is None else flag


def train_classifier(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    on_step: StepHook | None = None,
) -> dict | None:
    """Train (or resume) a classifier run in out_dir; return the final results (rank 0).

    Under torchrun each process trains its share of every global batch (DDP); rank 0 alone
    logs, validates, writes checkpoints and the report. Other ranks return None.
    """
    ctx = distributed.setup(resolve_device(config.device))
    try:
        return _train(config, Path(out_dir), resume, quiet or not ctx.is_main, on_step, ctx)
    finally:
        ctx.close()


def _train(config, out: Path, resume: bool, quiet: bool, on_step, ctx: distributed.DistContext) -> dict | None:
    last = out / "last.pt"
    start_epoch, best_val_mae, state = 0, math.inf, None
    if resume and last.is_file():
        state = load_checkpoint(last, CLASSIFIER_KIND)
        # A resumed run keeps the configuration it was started with.
        config = TrainConfig.from_dict(state["config"])
        start_epoch, best_val_mae = int(state["epoch"]), float(state["best_val_mae"])
    elif last.is_file():
        raise BookcoverError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
    ctx.barrier()  # every rank has read last.pt before rank 0 can overwrite it
    device = ctx.device

    data = load_labelled(config, quiet) if ctx.is_main else None
    ctx.barrier()  # rank 0 built the cache (and synthetic covers); the others reuse them
    if data is None:
        data = load_labelled(config, True)
    summary = data.summary()
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        data.write_skipped(out / "skipped_covers.csv")
        record = {"config": config.to_dict(), "data": summary, "resolved_data": resolve_source(config, True),
                  "world_size": ctx.world_size, "device": str(device)}
        write_config(out, record)

    torch.manual_seed(config.seed)
    model = build_model(config)
    if state is None and config.init:
        load_backbone_init(model, config.init)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config, fused=device.type == "cuda")
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    step_model = model
    if ctx.enabled:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if resolve_compile(config.compile, device):
        step_model = torch.compile(step_model, mode=None if config.compile_mode == "default" else config.compile_mode)
    amp_dtype = resolve_amp(config.amp, device, config.crop)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    train_pos = data.select("train")
    chunks = ctx.world_size * config.micro_batches
    if train_pos.size < max(chunks, 1):
        raise BookcoverError("too few training covers after the split: use more covers")
    pixels = torch.from_numpy(data.images(train_pos)).to(device)  # resident for the whole run
    labels = torch.from_numpy(data.labels[train_pos]).to(device)
    height, width = pixels.shape[1], pixels.shape[2]
    val_pos = data.select("val")
    val_pixels = data.images(val_pos)
    task_weights = (
        coral.task_importance_weights(labels, config.num_levels).to(device) if config.task_weights else None
    )
    loss_fn = _loss_fn(config)
    middle_val = baselines(data.labels[val_pos], config.num_levels)["middle"]["mae"]

    metrics_path = out / METRICS_FILE
    history = rewind_metrics(metrics_path, start_epoch) if ctx.is_main else []

    n = pixels.shape[0]
    batch = config.batch_size
    # A last batch too small to give every micro-batch an image is dropped.
    steps_per_epoch = n // batch + (1 if n % batch >= chunks else 0)
    attach_schedule(optimizer, config, steps_per_epoch, start_epoch)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        torch.manual_seed(config.seed * 7919 + epoch + 104_729 * ctx.rank)  # dropout
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        totals = torch.zeros(3, device=device, dtype=torch.float64)  # loss sum, abs error sum, count
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=quiet, leave=False)
        for step in bar:
            idx = perm[step * batch : (step + 1) * batch]
            crops = draw_crops(idx.numel(), height, width, config.crop, config.flip, gen)
            parts = list(zip(idx.tensor_split(chunks), crops.tensor_split(chunks), strict=True))
            mine = parts[ctx.rank * config.micro_batches : (ctx.rank + 1) * config.micro_batches]
            optimizer.zero_grad(set_to_none=True)
            for j, (part_idx, part_crops) in enumerate(mine):
                part_idx = part_idx.to(device, non_blocking=True)
                x = normalise(apply_crops(pixels[part_idx], config.crop, part_crops))
                y = labels[part_idx]
                syncing = not ctx.enabled or j == len(mine) - 1
                with contextlib.nullcontext() if syncing else step_model.no_sync():
                    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                        logit = step_model(x)
                    loss = loss_fn(logit.float(), model.coral_bias, y, task_weights)
                    if not torch.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; stopped. "
                            f"The last good checkpoint is {last if last.is_file() else 'none (first epoch)'}; "
                            "try a lower --lr"
                        )
                    # Each micro-batch's mean loss, weighted by its share of the global batch,
                    # so DDP's average over ranks gives the full batch's mean gradient.
                    scaler.scale(loss * (y.numel() * ctx.world_size / idx.numel())).backward()
                with torch.no_grad():
                    rank = ((logit.detach().float()[:, None] + model.coral_bias.detach().float()) > 0).sum(1)
                    totals += torch.stack([loss.detach().double() * y.numel(), (rank - y).abs().sum().double(),
                                           torch.tensor(float(y.numel()), device=device, dtype=torch.float64)])
            scaler.step(optimizer)
            scaler.update()
            if on_step is not None:
                on_step(epoch, step)
        if ctx.enabled:
            torch.distributed.all_reduce(totals)
        seconds = time.perf_counter() - t0
        # Evaluation statistics for these weights (every rank alike: same covers, same weights).
        batchnorm.recalibrate(model, pixels, config.crop, config.batch_size, config.bn_recalibrate, config.seed)
        if ctx.is_main:
            loss_sum, err_sum, count = totals.tolist()
            val_pred = predict_pixels(model, val_pixels, config.crop, config.eval_batch_size)
            val = ordinal_metrics(val_pred["rank"], data.labels[val_pos])
            record = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / count,
                "train_mae": err_sum / count,
                "val_mae": val["mae"],
                "val_rmse": val["rmse"],
                "val_accuracy": val["accuracy"],
                "val_middle_mae": middle_val,
                "lr": optimizer.param_groups[0]["lr"],
                "epoch_seconds": seconds,
                "images_per_second": count / seconds,
            }
            history.append(record)
            append_metrics(metrics_path, [record])
            improved = val["mae"] < best_val_mae or not math.isfinite(best_val_mae)
            if improved:
                best_val_mae = val["mae"]
            ckpt = _checkpoint(model, optimizer, config, epoch + 1, best_val_mae, summary)
            save_atomic(ckpt, last)
            if improved:
                save_atomic(ckpt, out / "best.pt")
            plot_curves(history, out / "curves.png", middle_val)
            if not quiet:
                tqdm.write(
                    f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f}  "
                    f"val MAE {val['mae']:.3f} (always-middle {middle_val:.3f})  {record['images_per_second']:.0f} img/s"
                )
        ctx.barrier()
    if not ctx.is_main:
        return None
    return finish_run(out, data, config, device)


def finish_run(out: Path, data: LabelledCovers, config: TrainConfig, device) -> dict:
    """Evaluate best.pt on every split and write results.json, confusion.png and report.md.

    best.pt keeps its own test metrics (``test_metrics``), so an export of it reports them
    whatever else is later written into the run directory.
    """
    best = load_checkpoint(out / "best.pt", CLASSIFIER_KIND)
    model = build_model(config).to(device).to(memory_format=torch.channels_last)
    model.load_state_dict(best["model"])
    results = evaluate_splits(model, data, config, device)
    best["test_metrics"] = test_metrics_record(results["test"], "stored in the checkpoint by training's final evaluation")
    save_atomic(best, out / "best.pt")
    (out / "results.json").write_text(json.dumps({"best_epoch": best["epoch"], "splits": results}, indent=2))
    plot_confusion(np.asarray(results["test"]["confusion"]), out / "confusion.png")
    extra = [
        f"Best epoch by validation MAE: {best['epoch']} of {config.epochs}.",
        "Data: " + ", ".join(f"{k} {v}" for k, v in data.summary().items()) + ".",
        f"Skipped covers: {len(data.cache.skipped)} (listed in skipped_covers.csv).",
    ]
    write_report(out, f"CORAL-CNN run ({config.preset} preset)", results, extra)
    return {"best_epoch": best["epoch"], "splits": results}
