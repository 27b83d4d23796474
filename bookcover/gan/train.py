"""The DCGAN training loop: top-level covers -> random 64 px crops -> G and D with BCE -> grids.

One run directory holds config.json, metrics.jsonl (per step and per epoch), last.pt
(atomic: G, D, both optimisers, epoch, fixed noise, RNG state), grids/epoch_XXX.png,
curves.png, and at the end evaluation.json and report.md. Each epoch's shuffling, crops and
noise come from a generator seeded by (seed, epoch), so a run resumed after a kill repeats on
CPU exactly what an uninterrupted one would have done.

G, D and every image they see are channels_last, on every device: real crops, G's output and
the weights then agree on one memory format, also inside torch.compile's graphs (on CUDA the
compiled backward once asserted channels_last strides and met contiguous ones). If compiling
still fails at the first step, that step is undone and redone eagerly, with one warning line.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import bookcover
from bookcover.checkpoint import GAN_KIND, load_checkpoint, remove_stale_temporaries, save_atomic
from bookcover.devices import resolve_device
from bookcover.errors import TrainingDiverged, UsageError
from bookcover.estimate import RunEstimate, chain_hooks, note
from bookcover.gan.collapse import CollapseMonitor
from bookcover.gan.config import GanConfig
from bookcover.gan.data import GanCovers, load_gan_covers, train_crops
from bookcover.gan.model import Discriminator, Generator, build_gan
from bookcover.gan.report import plot_gan_curves
from bookcover.gan.sampling import generate, level_rows, make_noise, save_grid
from bookcover.jsonio import read_json
from bookcover.options import check_gan_config
from bookcover.outputs import claim, prepare_out_dir, settle
from bookcover.resume import absolute_data, check_start_or_resume, nothing_to_do, resumed_config
from bookcover.runlog import CONFIG_FILE, METRICS_FILE, append_metrics, rewind_metrics, write_config

COMMAND = "gan train"  # the name its output folders are recorded under (bookcover.outputs)
# What a run writes into its folder besides grids/epoch_NNN.png and its evaluation's files.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, "last.pt", "curves.png")
# The final evaluation's host-side work (SWD against real covers, nearest neighbours, figures)
# per generated sample. It does not scale with the device's step time: issue 18's quick run
# (256 samples) spent about 8 s there (7 s estimated, 15 s actual), i.e. ~0.03 s a sample.
EVAL_SECONDS_PER_SAMPLE = 0.03

StepHook = Callable[[int, int], None]


def d_step(d: Discriminator, real: torch.Tensor, fake: torch.Tensor, real_y=None, fake_y=None):
    """D's loss: BCE(D(x), 1) + BCE(D(G(z)), 0), summed as in the DCGAN paper; plus D(x), D(G(z))."""
    out_real = d(real, real_y).float()
    out_fake = d(fake, fake_y).float()
    loss = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real)) + F.binary_cross_entropy_with_logits(
        out_fake, torch.zeros_like(out_fake)
    )
    return loss, torch.sigmoid(out_real).mean(), torch.sigmoid(out_fake).mean()


def g_step(d: Discriminator, fake: torch.Tensor, fake_y=None):
    """G's non-saturating loss BCE(D(G(z)), 1), plus D(G(z)) after D's update."""
    out = d(fake, fake_y).float()
    return F.binary_cross_entropy_with_logits(out, torch.ones_like(out)), torch.sigmoid(out).mean()


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """The GAN's one memory format (a no-op when x already has it)."""
    return x.contiguous(memory_format=torch.channels_last)


def gan_step(g_run, d_run, opt_g, opt_d, real, z, y_real=None, y_fake=None, autocast=nullcontext):
    """One DCGAN step: D on real and G(z), then G through the updated D. Returns the 5 statistics
    (loss_d, loss_g, D(x), D(G(z)) before and after D's update) as 0-d tensors."""
    with autocast():
        fake = channels_last(g_run(z, y_fake))
        loss_d, d_x, d_g_z1 = d_step(d_run, real, fake.detach(), y_real, y_fake)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with autocast():
        loss_g, d_g_z2 = g_step(d_run, fake, y_fake)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g, d_x, d_g_z1, d_g_z2


def compile_errors() -> tuple[type[BaseException], ...]:
    """What a failed compile raises: dynamo's and inductor's errors (TorchDynamoException is the
    base of BackendCompilerFailed, InductorError, Unsupported, ...; torch.compiler's
    troubleshooting guide names them), and the AssertionError of a stride check in inductor's
    generated code (the failure this fallback was written for). Nothing else: an out-of-memory
    error, or a bug of ours, is reported as what it is."""
    import torch._dynamo.exc as dynamo_exc

    return (dynamo_exc.TorchDynamoException, AssertionError)


def _oom_inside(exc: BaseException) -> BaseException | None:
    """The out-of-memory error a compile error wraps (autotuning can run out of memory), if any."""
    seen = exc
    while seen is not None:
        if isinstance(seen, torch.OutOfMemoryError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def first_step_or_eager(models, optimizers, compiled_step, eager_step):
    """Run the first compiled step; if compiling (or the compiled code) fails, restore G, D and
    both optimisers to before it, print one warning line and run the step eagerly.

    Only compile errors fall back (compile_errors); out of memory propagates as itself.
    Returns (statistics, whether the compiled modules can be kept).
    """
    saved = [copy.deepcopy(x.state_dict()) for x in (*models, *optimizers)]
    try:
        return compiled_step(), True
    except compile_errors() as exc:
        if (oom := _oom_inside(exc)) is not None:
            raise oom from None
        for x, state in zip((*models, *optimizers), saved, strict=True):
            x.load_state_dict(state)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(f"warning: torch.compile failed at the first GAN step ({type(exc).__name__}: {first}); "
              "continuing in eager mode", file=sys.stderr)
        return eager_step(), False


def _amp_context(config: GanConfig, device: torch.device):
    """bf16 autocast (amp auto on CUDA, or bf16; "on" is what older runs recorded), else none."""
    use = config.amp in ("bf16", "on") or (config.amp == "auto" and device.type == "cuda")
    if not use:
        return nullcontext
    dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    if dtype == torch.float16:
        raise UsageError(f"--amp {config.amp}: this GPU has no bf16 support; pass --amp none")
    return lambda: torch.autocast(device.type, dtype=dtype)


def _checkpoint(g, d, opt_g, opt_d, config, epoch, global_step, fixed_noise, fixed_labels, monitor) -> dict:
    return {
        "kind": GAN_KIND,
        "format": 1,
        "version": bookcover.__version__,
        "config": config.to_dict(),
        "epoch": epoch,
        "global_step": global_step,
        "generator": g.state_dict(),
        "discriminator": d.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "fixed_noise": fixed_noise,
        "fixed_labels": fixed_labels if fixed_labels is not None else torch.zeros(0, dtype=torch.long),
        "rng": torch.get_rng_state(),
        "monitor": monitor.state(),
    }


def _fixed_inputs(config: GanConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The grid's noise, fixed for the whole run: one row per level when conditional."""
    gen = torch.Generator().manual_seed(config.seed * 31 + 17)
    labels = None
    n = config.grid_samples
    if config.num_classes:
        per_row = max(1, n // config.num_classes)
        labels = level_rows(config.num_classes, per_row, config.num_classes)
        n = labels.numel()
    return make_noise(n, config.nz, config.noise, gen), labels


def _grid_nrow(config: GanConfig, n: int) -> int:
    return max(1, n // config.num_classes) if config.num_classes else max(1, int(math.sqrt(n)))


EVALUATION_FILE = "evaluation.json"


def _evaluated_epoch(out: Path) -> int | None:
    """The epoch the run's evaluation.json describes (None when there is none)."""
    try:
        return int(read_json(out / EVALUATION_FILE)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _finished(out: Path, done: int, epochs: int | None, evaluate: bool) -> str | None:
    """Why a resumed run that has all its epochs has nothing left to do (None: its evaluation is missing)."""
    if evaluate and _evaluated_epoch(out) != done:
        return None
    return nothing_to_do(out, done, epochs)


def train_gan(
    config: GanConfig,
    out_dir: str | Path,
    resume: bool = False,
    quiet: bool = False,
    on_step: StepHook | None = None,
    evaluate: bool = True,
    classifier: str | Path | None = None,
    covers: GanCovers | None = None,
    overwrite: bool = False,
    epochs: int | None = None,
) -> dict:
    """Train (or resume) a DCGAN run in out_dir, then evaluate it; return a summary dict.

    out_dir follows the --out policy (bookcover.outputs): new or empty, an existing run only with
    resume, a previous run's files replaced with overwrite. A resumed run keeps its own
    configuration except `epochs`, which extends it; a finished run asked for no more epochs
    returns {"nothing_to_do": why} without touching anything.
    """
    out = Path(out_dir)
    state = None
    last = check_start_or_resume(out, resume, overwrite, COMMAND)
    if resume:
        state = load_checkpoint(last, GAN_KIND)
        config = resumed_config(GanConfig.from_dict(state["config"]), last, epochs)  # the run's own configuration
        done = int(state["epoch"])
        if done >= config.epochs and (why := _finished(out, done, epochs, evaluate)):
            return {"nothing_to_do": why}
        recorded_epochs = int(state["config"]["epochs"])
    else:
        config = replace(config, epochs=epochs or config.epochs, data=absolute_data(config.data))
    check_gan_config(config)

    device = resolve_device(config.device)
    autocast = _amp_context(config, device)  # refused here, before anything is decoded or written
    covers = covers if covers is not None else load_gan_covers(config, quiet)
    # Only now, with the covers read, may --overwrite remove the previous run.
    prepare_out_dir(out, COMMAND, resume=resume, overwrite=overwrite)
    claim(out, *RUN_FILES)  # settled at the end of each epoch: a kill leaves them pending, still ours
    remove_stale_temporaries(out)
    if state is not None:
        extended = f" (extended from {recorded_epochs})" if config.epochs != recorded_epochs else ""
        note(f"resuming {out} after epoch {int(state['epoch'])}: training to epoch {config.epochs}{extended}", quiet)
    write_config(out, {"config": config.to_dict(), "data": covers.summary()})

    torch.manual_seed(config.seed)
    g, d = build_gan(config.nz, config.ngf, config.ndf, config.num_classes)
    g, d = g.to(device, memory_format=torch.channels_last), d.to(device, memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    fixed_noise, fixed_labels = _fixed_inputs(config)
    monitor = CollapseMonitor(config.collapse_steps)
    start_epoch, global_step = 0, 0
    if state is not None:
        g.load_state_dict(state["generator"])
        d.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        fixed_noise = state["fixed_noise"]
        fixed_labels = state["fixed_labels"] if state["fixed_labels"].numel() else None
        torch.set_rng_state(state["rng"])
        monitor.load(state["monitor"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])

    use_compile = config.compile == "on" or (config.compile == "auto" and device.type == "cuda")
    g_run: Callable = torch.compile(g) if use_compile else g
    d_run: Callable = torch.compile(d) if use_compile else d
    compile_unproven = use_compile  # until the first step of this process has run compiled

    pixels = torch.from_numpy(covers.pixels).to(device)  # resident for the whole run
    classes = torch.from_numpy(covers.classes).to(device)
    n = pixels.shape[0]
    bs = min(config.batch_size, n)
    steps_per_epoch = n // bs  # drop the last partial batch: BatchNorm dislikes tiny batches

    metrics_path = out / METRICS_FILE
    history = rewind_metrics(metrics_path, start_epoch)
    estimate = RunEstimate(
        "gan train", config.preset, start_epoch, config.epochs, steps_per_epoch,
        epoch_overhead_steps=config.grid_samples / bs / 3,  # the epoch's grid: a forward pass of G
        final_steps=config.eval_samples / bs / 3 if evaluate else 0.0,  # generating the samples: G forward
        final_seconds=config.eval_samples * EVAL_SECONDS_PER_SAMPLE if evaluate else 0.0,
        quiet=quiet, sync=torch.cuda.synchronize if device.type == "cuda" else None,
    )
    on_step = chain_hooks(on_step, estimate)
    warnings_seen: list[str] = [w for h in history for w in h.get("warnings", [])]

    for epoch in range(start_epoch, config.epochs):
        g.train()
        d.train()
        monitor.new_epoch()
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen).to(device)
        t0 = time.perf_counter()
        sums = dict(loss_d=0.0, loss_g=0.0, d_x=0.0, d_g_z1=0.0, d_g_z2=0.0)
        epoch_warnings: list[str] = []
        lines = []
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"GAN epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=quiet,
            leave=False,
        )
        for step in bar:
            idx = perm[step * bs : (step + 1) * bs]
            real = channels_last(train_crops(pixels[idx], config.crop, gen))
            y_real = classes[idx] if config.num_classes else None
            z = make_noise(bs, config.nz, config.noise, gen).to(device)
            y_fake = (
                torch.randint(0, config.num_classes, (bs,), generator=gen).to(device) if config.num_classes else None
            )

            inputs = (opt_g, opt_d, real, z, y_real, y_fake, autocast)
            if compile_unproven:
                stats, kept = first_step_or_eager(
                    (g, d), (opt_g, opt_d), partial(gan_step, g_run, d_run, *inputs), partial(gan_step, g, d, *inputs)
                )
                if not kept:
                    g_run, d_run = g, d
                compile_unproven = False
            else:
                stats = gan_step(g_run, d_run, *inputs)
            loss_d, loss_g, d_x, d_g_z1, d_g_z2 = stats

            rec = {k: float(v.detach()) for k, v in zip(sums, (loss_d, loss_g, d_x, d_g_z1, d_g_z2), strict=True)}
            if not (math.isfinite(rec["loss_d"]) and math.isfinite(rec["loss_g"])):
                raise TrainingDiverged(
                    f"GAN loss became non-finite at epoch {epoch + 1}, step {step + 1} "
                    f"(D {rec['loss_d']}, G {rec['loss_g']}); stopped. The last good checkpoint is "
                    f"{last if last.is_file() else 'none (first epoch)'}; try a lower --lr"
                )
            for k, v in rec.items():
                sums[k] += v
            global_step += 1
            lines.append({"kind": "step", "epoch": epoch + 1, "step": global_step, **rec})
            for w in monitor.step(rec["loss_d"], rec["d_g_z1"]):
                epoch_warnings.append(w)
            bar.set_postfix(loss_d=f"{rec['loss_d']:.3f}", loss_g=f"{rec['loss_g']:.3f}")
            if on_step is not None:
                on_step(epoch, step)
        seconds = time.perf_counter() - t0

        samples = generate(g, fixed_noise, fixed_labels)
        grid = f"grids/epoch_{epoch + 1:03d}.png"
        claim(out, *RUN_FILES, grid)
        save_grid(samples, out / grid, nrow=_grid_nrow(config, samples.shape[0]))
        epoch_warnings += monitor.samples(samples, fixed_labels)
        record = {
            "kind": "epoch",
            "epoch": epoch + 1,
            **{k: v / max(steps_per_epoch, 1) for k, v in sums.items()},
            "steps": steps_per_epoch,
            "epoch_seconds": seconds,
            "images_per_second": steps_per_epoch * bs / seconds if seconds > 0 else None,
            "warnings": epoch_warnings,
        }
        lines.append(record)
        history += lines
        append_metrics(metrics_path, lines)
        save_atomic(
            _checkpoint(g, d, opt_g, opt_d, config, epoch + 1, global_step, fixed_noise, fixed_labels, monitor), last
        )
        plot_gan_curves(history, out / "curves.png")
        settle(out, *RUN_FILES, grid)
        warnings_seen += epoch_warnings
        if not quiet:
            for w in epoch_warnings:
                tqdm.write(f"warning: {w}")
            tqdm.write(
                f"GAN epoch {epoch + 1}/{config.epochs}: loss D {record['loss_d']:.3f}  G {record['loss_g']:.3f}  "
                f"D(x) {record['d_x']:.3f}  D(G(z)) before/after D's update {record['d_g_z1']:.3f}/{record['d_g_z2']:.3f}  "
                f"{record['images_per_second'] or 0:.0f} img/s"
            )
    summary = {"epochs": config.epochs, "steps": global_step, "warnings": warnings_seen, "run": str(out)}
    if state is not None:
        summary["resumed_after"] = int(state["epoch"])
        if config.epochs != recorded_epochs:
            summary["extended_from"] = recorded_epochs
    if evaluate:
        from bookcover.gan.evaluate import evaluate_into

        summary["evaluation"] = evaluate_into(
            last, out, covers=covers, classifier=classifier, quiet=quiet, device=device
        )
    return summary


__all__ = ["train_gan", "d_step", "g_step", "Generator", "Discriminator"]
