"""The CORAL-CNN training loop: cache -> device batches -> ResNet-34 -> CORAL loss -> checkpoints.

One run directory holds config.json, metrics.jsonl, last.pt/best.pt (atomic), curves.png,
confusion.png, skipped_covers.csv, results.json and report.md. A killed run resumes from
last.pt; every epoch's shuffling, crops and dropout are seeded from (seed, epoch), so a resumed
run on CPU repeats exactly what an uninterrupted one would have done. The step itself (no host
sync; on CUDA one replayed graph) lives in :mod:`bookcover.classifier.step`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import bookcover
from bookcover import coral
from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint, remove_stale_temporaries, save_atomic
from bookcover.classifier import batchnorm, distributed
from bookcover.classifier.config import TrainConfig
from bookcover.classifier.evaluate import evaluate_splits, test_metrics_record
from bookcover.classifier.metrics import baselines, ordinal_metrics
from bookcover.classifier.model import load_backbone_init
from bookcover.classifier.predict import build_model, predict_pixels
from bookcover.classifier.report import data_table, plot_confusion, plot_curves, write_report
from bookcover.classifier.schedule import LrSchedule, make_optimizer
from bookcover.classifier.step import (
    CHECK_EVERY,
    StepStats,
    TrainStep,
    epoch_draws,
    load_optimizer_state,
    resolve_step_mode,
)
from bookcover.coral.reference import check_labels
from bookcover.data.batches import MEAN, STD
from bookcover.data.dataset import LabelledCovers, load_labelled, resolve_source
from bookcover.data.levels import SPLIT_NAMES
from bookcover.devices import resolve_device
from bookcover.errors import BookcoverError, DataError, TrainingDiverged, UsageError
from bookcover.estimate import RunEstimate, chain_hooks, note
from bookcover.jsonio import write_json
from bookcover.options import check_train_config
from bookcover.outputs import claim, prepare_out_dir, settle
from bookcover.resume import absolute_data, check_start_or_resume, nothing_to_do, resumed_config
from bookcover.runlog import CONFIG_FILE, METRICS_FILE, append_metrics, rewind_metrics, write_config

COMMAND = "train"  # the name its output folders are recorded under (bookcover.outputs)
# finish_run's host-side work per cover (colour histograms and the ridge baseline, best.pt read
# and rewritten, figures): issue 18's quick run (2,500 covers) finished 6 s after a 30 s
# estimate, about 2 s of it the forward pass counted in steps; ~4 s / 2,500 covers is left.
FINISH_SECONDS_PER_COVER = 0.0016
# Every file a run writes into its folder: claimed before each batch of writes, settled after.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, "skipped_covers.csv", "last.pt", "best.pt", "curves.png", "results.json",
             "confusion.png", "report.md")

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


# What resume needs beyond what evaluate, export and predict read: best.pt leaves it out (a
# ResNet-34's Adam state is twice its weights: 256 MB per file with it, 85 MB without). last.pt
# keeps it until the last epoch: a killed run then resumes exactly. The last epoch's last.pt
# drops it (a finished run takes 170 MB, not 340 MB): a kill after it only re-runs the final
# evaluation, and `--resume --epochs N` extends a finished run from its weights with Adam's
# moments started afresh (it says so), like a new optimiser on a fine-tuning run.
RESUME_ONLY = ("optimizer",)


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


def _without(ckpt: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in ckpt.items() if k not in keys}


def _loss_fn(config: TrainConfig, device: torch.device | None = None, step_mode: str = "eager"):
    """The CORAL loss with config.loss_impl; looks up coral.coral_loss at call time (patchable).

    With a device, an explicit impl that cannot run there fails here, in one line. In graph
    mode the eager warm-up steps must run what the capture records (a kernel first compiled
    while capturing would break it), so "auto" is pinned to the capture's route.
    """
    if config.loss_impl not in coral.IMPLS:
        raise UsageError(f"unknown --loss-impl {config.loss_impl!r}; choose from {', '.join(coral.IMPLS)}")
    impl = config.loss_impl
    if device is not None:
        route = coral.resolve_route(impl, device, "capture" if step_mode == "graph" else "eager")
        if step_mode == "graph":
            impl = route

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
        raise UsageError(f"unknown --amp {amp!r}; choose auto, bf16, fp16 or none")
    return choices[amp]


def train_classifier(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    on_step: StepHook | None = None,
    overwrite: bool = False,
    epochs: int | None = None,
) -> dict | None:
    """Train (or resume) a classifier run in out_dir; return the final results (rank 0).

    out_dir follows the --out policy (bookcover.outputs): new or empty, an existing run only with
    resume, and with overwrite a previous run's files are replaced. A resumed run keeps its
    own configuration except `epochs`, which extends it; a finished run asked for no more
    epochs returns {"nothing_to_do": why} without touching anything.

    Under torchrun each process trains its share of every global batch (DDP); rank 0 alone
    logs, validates, writes checkpoints and the report. Other ranks return None.
    """
    check_train_config(config)  # one line and exit 2 before anything is decoded or written
    ctx = distributed.setup(resolve_device(config.device))
    try:
        return _train(config, Path(out_dir), resume, quiet or not ctx.is_main, on_step, ctx, overwrite, epochs)
    finally:
        ctx.close()


def covers_needed_per_level(fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> int:
    """The fewest covers a level needs for stratified_split to put one in each of train, val, test."""
    m = 1
    while True:
        n_train, n_val = round(fractions[0] * m), round(fractions[1] * m)
        if n_train >= 1 and n_val >= 1 and m - n_train - n_val >= 1:
            return m
        m += 1


def require_every_split(data: LabelledCovers) -> None:
    """Refuse, before training, covers too few to give every level a train, val and test cover:
    empty splits would give undefined (NaN) metrics, not a result."""
    k = data.num_levels
    for name, code in SPLIT_NAMES.items():
        per_level = np.bincount(data.labels[data.split == code], minlength=k)
        if per_level.min() == 0:
            need = covers_needed_per_level()
            have = np.bincount(data.labels, minlength=k).min()
            raise DataError(
                f"too few covers: {len(data)} readable covers give {have} per level, and the {name} split has no "
                f"cover of level {int(per_level.argmin())}; each of the {k} levels needs at least {need} "
                f"(8:1:1 train/val/test), so use at least {need * k} covers (--max-covers or more data)"
            )


@dataclass
class RunStart:
    """Where a run begins: its configuration and, for a resume, the checkpoint it continues."""

    config: TrainConfig
    last: Path
    state: dict | None = None
    start_epoch: int = 0
    best_val_mae: float = math.inf
    recorded_epochs: int = 0


@dataclass
class Validation:
    """The validation covers, read once, and the always-middle MAE each epoch is compared with."""

    positions: np.ndarray
    pixels: np.ndarray
    labels: np.ndarray
    middle_mae: float


def _train(
    config, out: Path, resume: bool, quiet: bool, on_step, ctx: distributed.DistContext, overwrite: bool = False,
    epochs: int | None = None,
) -> dict | None:
    """The run, step by step: start or resume, read the covers, open the run directory, build the
    model and its step, train the epochs, then evaluate best.pt (rank 0)."""
    start = _start_or_resume(config, out, resume, overwrite, epochs)
    if isinstance(start, str):
        return {"nothing_to_do": start} if ctx.is_main else None
    config = start.config
    ctx.barrier()  # every rank has read last.pt before rank 0 can overwrite it
    device = ctx.device
    amp_dtype = resolve_amp(config.amp, device, config.crop)
    mode = resolve_step_mode(config.step_mode, config.compile, device, ctx.enabled, amp_dtype == torch.float16)
    data = _load_checked_covers(config, quiet, ctx)
    if ctx.is_main:
        _open_run_dir(out, start, data, ctx, mode, resume, overwrite, quiet)
    model, optimizer, runner = _build_training(config, start.state, data, ctx, mode, amp_dtype, quiet=quiet or not ctx.is_main)
    val_pos = data.select("val")
    val = Validation(val_pos, data.images(val_pos), data.labels[val_pos],
                     baselines(data.labels[val_pos], config.num_levels)["middle"]["mae"])
    _train_epochs(config, out, start, data, model, optimizer, runner, val, ctx, quiet, on_step)
    if not ctx.is_main:
        return None
    claim(out, *RUN_FILES)
    result = finish_run(out, data, config, device)
    settle(out, *RUN_FILES)
    if start.state is not None:
        result["resumed_after"] = start.start_epoch
        if config.epochs != start.recorded_epochs:
            result["extended_from"] = start.recorded_epochs
    return result


def _start_or_resume(config: TrainConfig, out: Path, resume: bool, overwrite: bool, epochs: int | None) -> RunStart | str:
    """The run's configuration (a resumed run keeps its own), or why a finished run has nothing to do."""
    last = check_start_or_resume(out, resume, overwrite, COMMAND)
    if not resume:
        return RunStart(replace(config, epochs=epochs or config.epochs, data=absolute_data(config.data)), last)
    state = load_checkpoint(last, CLASSIFIER_KIND)
    config = resumed_config(TrainConfig.from_dict(state["config"]), last, epochs)
    start = RunStart(config, last, state, int(state["epoch"]), float(state["best_val_mae"]),
                     int(state["config"]["epochs"]))
    if start.start_epoch >= config.epochs and (out / "results.json").is_file():
        return nothing_to_do(out, start.start_epoch, epochs)
    return start


def _load_checked_covers(config: TrainConfig, quiet: bool, ctx: distributed.DistContext) -> LabelledCovers:
    """The labelled covers, decoded once by rank 0 (the others reuse its cache), with every split filled."""
    data = load_labelled(config, quiet) if ctx.is_main else None
    ctx.barrier()  # rank 0 built the cache (and synthetic covers); the others reuse them
    if data is None:
        data = load_labelled(config, True)
    require_every_split(data)
    return data


def _open_run_dir(out: Path, start: RunStart, data: LabelledCovers, ctx: distributed.DistContext, mode: str,
                  resume: bool, overwrite: bool, quiet: bool) -> None:
    """Rank 0: only now, with the data read and checked, may --overwrite remove the previous run;
    then skipped_covers.csv and config.json."""
    config = start.config
    prepare_out_dir(out, COMMAND, resume=resume, overwrite=overwrite)
    claim(out, *RUN_FILES)  # settled at the end of each epoch: a kill leaves them pending, still ours
    remove_stale_temporaries(out)
    if start.state is not None:
        extended = f" (extended from {start.recorded_epochs})" if config.epochs != start.recorded_epochs else ""
        note(f"resuming {out} after epoch {start.start_epoch}: training to epoch {config.epochs}{extended}", quiet)
    data.write_skipped(out / "skipped_covers.csv")
    record = {"config": config.to_dict(), "data": data.summary(), "resolved_data": resolve_source(config, True),
              "world_size": ctx.world_size, "device": str(ctx.device), "step_mode": mode}
    write_config(out, record)


def _build_training(
    config: TrainConfig, state: dict | None, data: LabelledCovers, ctx: distributed.DistContext, mode: str,
    amp_dtype: torch.dtype | None, quiet: bool = False,
) -> tuple[torch.nn.Module, torch.optim.Optimizer, TrainStep]:
    """The model (restored on resume), its optimizer, and the step over the device-resident training covers."""
    device = ctx.device
    torch.manual_seed(config.seed)
    model = build_model(config)
    if state is None and config.init:
        load_backbone_init(model, config.init)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # Graph mode: a capturable step whose learning rate lives on the device (see schedule).
    optimizer = make_optimizer(model, config, fused=device.type == "cuda", capturable=mode == "graph",
                               tensor_lr=mode == "graph")
    if state is not None:
        model.load_state_dict(state["model"])
        if "optimizer" in state:
            load_optimizer_state(optimizer, state["optimizer"])
        else:  # extending a finished run (see RESUME_ONLY)
            note("last.pt of a finished run keeps no optimizer state: Adam's moments start afresh", quiet)
    step_model = model
    if ctx.enabled:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    train_pos = data.select("train")
    chunks = ctx.world_size * config.micro_batches
    if train_pos.size < max(chunks, 1):
        raise BookcoverError("too few training covers after the split: use more covers")
    # Checked once here, so that no step has to read labels back from the device.
    check_labels(torch.from_numpy(data.labels[train_pos]), config.num_levels)
    pixels = torch.from_numpy(data.images(train_pos)).to(device)  # resident for the whole run
    labels = torch.from_numpy(data.labels[train_pos]).to(device)
    task_weights = (
        coral.task_importance_weights(labels, config.num_levels).to(device) if config.task_weights else None
    )
    # Eager keeps the dispatcher's checked loss (looked up per call); graph and compile need
    # a loss without host reads.
    loss_fn = _loss_fn(config, device, mode)
    runner = TrainStep(
        model, step_model, optimizer, loss_fn, pixels, labels, config.crop, mode=mode, amp_dtype=amp_dtype,
        channels_last=config.channels_last, task_weights=task_weights, scaler=scaler, chunks=chunks,
        mine=slice(ctx.rank * config.micro_batches, (ctx.rank + 1) * config.micro_batches),
        world_size=ctx.world_size, ddp=ctx.enabled, compile_mode=config.compile_mode,
    )
    return model, optimizer, runner


def _train_epochs(
    config: TrainConfig, out: Path, start: RunStart, data: LabelledCovers, model: torch.nn.Module,
    optimizer: torch.optim.Optimizer, runner: TrainStep, val: Validation, ctx: distributed.DistContext, quiet: bool,
    on_step: StepHook | None,
) -> None:
    """Every remaining epoch: the steps, then (rank 0) validation, metrics, checkpoints and curves."""
    device = ctx.device
    metrics_path = out / METRICS_FILE
    history = rewind_metrics(metrics_path, start.start_epoch) if ctx.is_main else []
    n, height, width = runner.pixels.shape[0], runner.pixels.shape[1], runner.pixels.shape[2]
    batch = config.batch_size
    # A last batch too small to give every micro-batch an image is dropped.
    steps_per_epoch = n // batch + (1 if n % batch >= runner.chunks else 0)
    estimate = RunEstimate(
        "train", config.preset, start.start_epoch, config.epochs, steps_per_epoch,
        epoch_overhead_steps=val.positions.size / batch / 3,  # validation: forward only, about a third of a step per image
        final_steps=len(data) / batch / 3,  # finish_run: best.pt on every split, forward only
        final_seconds=len(data) * FINISH_SECONDS_PER_COVER,
        quiet=quiet, sync=torch.cuda.synchronize if device.type == "cuda" else None,
    )
    on_step = chain_hooks(on_step, estimate)
    schedule = LrSchedule(optimizer, config, steps_per_epoch, start.start_epoch)
    best_val_mae = start.best_val_mae
    for epoch in range(start.start_epoch, config.epochs):
        model.train()
        torch.manual_seed(config.seed * 7919 + epoch + 104_729 * ctx.rank)  # dropout
        perm, crops = epoch_draws(n, height, width, config.crop, config.flip, config.seed, epoch, device)
        runner.stats.reset()
        t0 = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=quiet, leave=False)
        for step in bar:
            runner(perm[step * batch : (step + 1) * batch], crops[step * batch : (step + 1) * batch])
            schedule.advance()
            if (step + 1) % CHECK_EVERY == 0:
                _stop_if_diverged(runner.stats, ctx, epoch, start.last)
            if on_step is not None:
                on_step(epoch, step)
        _stop_if_diverged(runner.stats, ctx, epoch, start.last)
        totals = runner.stats.totals.clone()
        if ctx.enabled:
            torch.distributed.all_reduce(totals)
        loss_sum, err_sum, count = totals.tolist()  # waits for the epoch's last step
        seconds = time.perf_counter() - t0
        # Evaluation statistics for these weights (every rank alike: same covers, same weights).
        batchnorm.recalibrate(model, runner.pixels, config.crop, config.batch_size, config.bn_recalibrate, config.seed)
        if ctx.is_main:
            record = {"epoch": epoch + 1, "train_loss": loss_sum / count, "train_mae": err_sum / count,
                      **_validate(model, config, val), "lr": optimizer.param_groups[0]["lr"],
                      "epoch_seconds": seconds, "images_per_second": count / seconds}
            history.append(record)
            claim(out, *RUN_FILES)
            append_metrics(metrics_path, [record])
            best_val_mae = _save_epoch(out, start, model, optimizer, config, epoch, record, best_val_mae, data)
            plot_curves(history, out / "curves.png", val.middle_mae)
            settle(out, *RUN_FILES)
            if not quiet:
                tqdm.write(
                    f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f}  "
                    f"val MAE {record['val_mae']:.3f} (always-middle {val.middle_mae:.3f})  "
                    f"{record['images_per_second']:.0f} img/s"
                )
        ctx.barrier()


def _validate(model: torch.nn.Module, config: TrainConfig, val: Validation) -> dict:
    """This epoch's validation metrics, beside always-middle."""
    pred = predict_pixels(model, val.pixels, config.crop, config.eval_batch_size)
    m = ordinal_metrics(pred["rank"], val.labels)
    return {"val_mae": m["mae"], "val_rmse": m["rmse"], "val_accuracy": m["accuracy"], "val_middle_mae": val.middle_mae}


def _save_epoch(out: Path, start: RunStart, model, optimizer, config: TrainConfig, epoch: int, record: dict,
                best_val_mae: float, data: LabelledCovers) -> float:
    """last.pt every epoch, best.pt when validation improved (atomic both); returns the best MAE so far.

    The optimizer state is kept in last.pt only while a resume after a kill needs it: the last
    epoch's last.pt goes without it (a 2-epoch quick run: 163 MB instead of 326 MB), so extending a
    finished run starts Adam's moments afresh (train says so)."""
    improved = record["val_mae"] < best_val_mae or not math.isfinite(best_val_mae)
    if improved:
        best_val_mae = record["val_mae"]
    ckpt = _checkpoint(model, optimizer, config, epoch + 1, best_val_mae, data.summary())
    save_atomic(ckpt if epoch + 1 < config.epochs else _without(ckpt, RESUME_ONLY), start.last)
    if improved:
        save_atomic(_without(ckpt, RESUME_ONLY), out / "best.pt")
    return best_val_mae


def _stop_if_diverged(stats: StepStats, ctx: distributed.DistContext, epoch: int, last: Path) -> None:
    """Read the device's non-finite flag (one sync; all ranks agree) and stop with one line."""
    bad_step, bad_loss = stats.read_bad()
    if ctx.enabled:
        flag = torch.tensor([float(bad_step >= 0)], device=ctx.device)
        torch.distributed.all_reduce(flag)
        if flag.item() == 0:
            return
    elif bad_step < 0:
        return
    where = f"loss became {bad_loss} at epoch {epoch + 1}, step {bad_step + 1}" if bad_step >= 0 else (
        f"the loss became non-finite on another rank in epoch {epoch + 1}")
    raise TrainingDiverged(
        f"{where}; stopped. The last good checkpoint is {last if last.is_file() else 'none (first epoch)'}; "
        "try a lower --lr"
    )


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
    write_json(out / "results.json", {"best_epoch": best["epoch"], "splits": results})
    plot_confusion(np.asarray(results["test"]["confusion"]), out / "confusion.png")
    extra = [
        f"Best epoch by validation MAE: {best['epoch']} of {config.epochs}.",
        "",
        *data_table(data.summary()),
        f"Skipped covers: {len(data.cache.skipped)} (listed in skipped_covers.csv).",
    ]
    write_report(out, f"CORAL-CNN run ({config.preset} preset)", results, extra)
    return {"best_epoch": best["epoch"], "epochs": config.epochs, "splits": results}
