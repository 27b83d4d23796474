"""The CORAL-CNN training loop: cache -> device batches -> ResNet-34 -> CORAL loss -> checkpoints.

One run directory holds config.json, metrics.jsonl, last.pt/best.pt (atomic), curves.png,
confusion.png, skipped_covers.csv, results.json and report.md. A killed run resumes from
last.pt; every epoch's shuffling, crops and dropout are seeded from (seed, epoch), so a resumed
run on CPU repeats exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

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
from bookcover.data.batches import MEAN, STD, train_batch
from bookcover.data.dataset import LabelledCovers, prepare_dataset
from bookcover.data.defaults import synthetic_default
from bookcover.errors import BookcoverError, TrainingDiverged
from bookcover.inference import build_model, predict_pixels, resolve_device
from bookcover.train.checkpoint import CLASSIFIER_KIND, load_checkpoint, save_atomic
from bookcover.train.config import TrainConfig
from bookcover.train.metrics import baselines, confusion_matrix, ordinal_metrics
from bookcover.train.report import plot_confusion, plot_curves, read_metrics, write_report

StepHook = Callable[[int, int], None]


def resolve_data(config: TrainConfig, quiet: bool = False) -> str:
    """The data folder to read: the user's, or the synthetic default (generated once)."""
    if config.data is not None:
        return config.data
    return str(synthetic_default(config.synth_n, config.seed, quiet=quiet))


def load_data(config: TrainConfig, quiet: bool = False) -> LabelledCovers:
    return prepare_dataset(
        resolve_data(config, quiet),
        size=(config.image_size, config.image_size),
        num_levels=config.num_levels,
        drop_remainder=config.drop_remainder,
        seed=config.seed,
        score_column=config.score_column,
        max_covers=config.max_covers,
        quiet=quiet,
    )


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


def evaluate_splits(model, data: LabelledCovers, config: TrainConfig, device, splits=("train", "val", "test")) -> dict:
    """Model metrics beside the trivial baselines (majority taken from train labels)."""
    train_labels = data.labels[data.select("train")]
    results = {}
    for split in splits:
        pos = data.select(split)
        pred = predict_pixels(model, data.images(pos), config.crop, config.eval_batch_size)
        labels = data.labels[pos]
        results[split] = {
            "model": ordinal_metrics(pred["rank"], labels),
            "baselines": baselines(labels, config.num_levels, train_labels),
            "confusion": confusion_matrix(pred["rank"], labels, config.num_levels).tolist(),
        }
    return results


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


def train_classifier(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    on_step: StepHook | None = None,
) -> dict:
    """Train (or resume) a classifier run in out_dir; return the final results dict."""
    out = Path(out_dir)
    last = out / "last.pt"
    start_epoch, best_val_mae, state = 0, math.inf, None
    if resume and last.is_file():
        state = load_checkpoint(last, CLASSIFIER_KIND)
        # A resumed run keeps the configuration it was started with.
        config = TrainConfig.from_dict(state["config"])
        start_epoch, best_val_mae = int(state["epoch"]), float(state["best_val_mae"])
    elif last.is_file():
        raise BookcoverError(f"{out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    device = resolve_device(config.device)
    data = load_data(config, quiet)
    data.write_skipped(out / "skipped_covers.csv")
    summary = data.summary()
    (out / "config.json").write_text(json.dumps({"config": config.to_dict(), "data": summary, "resolved_data": resolve_data(config, True)}, indent=2))

    torch.manual_seed(config.seed)
    model = build_model(config).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
    )
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    train_pos = data.select("train")
    if train_pos.size == 0:
        raise BookcoverError("no training covers after the split: use more covers")
    pixels = torch.from_numpy(data.images(train_pos)).to(device)  # resident for the whole run
    labels = torch.from_numpy(data.labels[train_pos]).to(device)
    val_pos = data.select("val")
    val_pixels = data.images(val_pos)
    task_weights = (
        coral.task_importance_weights(labels, config.num_levels).to(device) if config.task_weights else None
    )
    loss_fn = _loss_fn(config)
    middle_val = baselines(data.labels[val_pos], config.num_levels)["middle"]["mae"]

    metrics_path = out / "metrics.jsonl"
    history = [h for h in read_metrics(metrics_path) if h.get("epoch", 0) <= start_epoch]
    metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))

    n = pixels.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        torch.manual_seed(config.seed * 7919 + epoch)  # dropout
        perm = torch.randperm(n, generator=gen).to(device)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        abs_err = torch.zeros((), device=device)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=quiet, leave=False)
        for step in bar:
            idx = perm[step * config.batch_size : (step + 1) * config.batch_size]
            x = train_batch(pixels[idx], config.crop, config.flip, gen)
            y = labels[idx]
            logit = model(x)
            loss = loss_fn(logit, model.coral_bias, y, task_weights)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; stopped. "
                    f"The last good checkpoint is {last if last.is_file() else 'none (first epoch)'}; "
                    "try a lower --lr"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach() * y.numel()
                rank = ((logit.detach().float()[:, None] + model.coral_bias.detach().float()) > 0).sum(1)
                abs_err += (rank - y).abs().sum()
            if on_step is not None:
                on_step(epoch, step)
        seconds = time.perf_counter() - t0
        val_pred = predict_pixels(model, val_pixels, config.crop, config.eval_batch_size)
        val = ordinal_metrics(val_pred["rank"], data.labels[val_pos])
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / n,
            "train_mae": float(abs_err) / n,
            "val_mae": val["mae"],
            "val_rmse": val["rmse"],
            "val_accuracy": val["accuracy"],
            "val_middle_mae": middle_val,
            "epoch_seconds": seconds,
            "images_per_second": n / seconds,
        }
        history.append(record)
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
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
    return finish_run(out, data, config, device)


def finish_run(out: Path, data: LabelledCovers, config: TrainConfig, device) -> dict:
    """Evaluate best.pt on every split and write results.json, confusion.png and report.md."""
    best = load_checkpoint(out / "best.pt", CLASSIFIER_KIND)
    model = build_model(config).to(device).to(memory_format=torch.channels_last)
    model.load_state_dict(best["model"])
    results = evaluate_splits(model, data, config, device)
    (out / "results.json").write_text(json.dumps({"best_epoch": best["epoch"], "splits": results}, indent=2))
    plot_confusion(np.asarray(results["test"]["confusion"]), out / "confusion.png")
    extra = [
        f"Best epoch by validation MAE: {best['epoch']} of {config.epochs}. Data: {data.summary()}.",
        f"Skipped covers: {len(data.cache.skipped)} (listed in skipped_covers.csv).",
    ]
    write_report(out, f"CORAL-CNN run ({config.preset} preset)", results, extra)
    return {"best_epoch": best["epoch"], "splits": results}
