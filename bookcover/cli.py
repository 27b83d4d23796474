"""The bookcover-fast command line: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import json
import sys
import time
from contextlib import closing
from pathlib import Path

import click

from bookcover import __version__
from bookcover.cli_support import as_user_error, interrupt_message
from bookcover.errors import BookcoverError, Interrupted, UsageError
from bookcover.options import DEVICE_HELP, check_device


class FriendlyCommand(click.Command):
    """Ctrl-C becomes one line that says what this command kept (exit 130), never a traceback."""

    def invoke(self, ctx: click.Context):
        ctx.meta["bookcover.started"] = time.time()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted(interrupt_message(command_path(ctx), ctx.params.get("out"),
                                                ctx.meta["bookcover.started"])) from None


class FriendlyGroup(click.Group):
    """Turn library errors into one line on stderr and their exit code, never a traceback."""

    command_class = FriendlyCommand
    group_class = type  # sub-groups (data, gan) are FriendlyGroups too

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except BookcoverError as exc:
            _raise_one_line(exc)
        except RuntimeError as exc:  # out of device memory: one line; anything else stays a bug report
            known = as_user_error(exc)
            if known is None:
                raise
            _raise_one_line(known)
        except KeyboardInterrupt:  # outside any command (while parsing, say)
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _raise_one_line(exc: BookcoverError):
    error = click.ClickException(str(exc))
    error.exit_code = exc.exit_code
    raise error from None


def command_path(ctx: click.Context) -> str:
    """The sub-command path without the program name (which may be "python -m bookcover.cli")."""
    names, node = [], ctx
    while node.parent is not None:
        names.append(node.info_name)
        node = node.parent
    return " ".join(reversed(names))


# --- shared options: each declared once, with one meaning everywhere ---


def data_option(required: bool = False, help_extra: str = ""):
    return click.option(
        "--data",
        type=click.Path(path_type=Path),
        required=required,
        help="Covers in the study's layout (book_data.csv + images/<row>.jpg) or a manifest CSV "
        "with columns path,score." + help_extra,
    )


def _checked_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return check_device(value)  # a UsageError here is one line and exit 2, before the command runs


device_option = click.option("--device", default="auto", show_default=True, callback=_checked_device,
                             help=DEVICE_HELP)


def out_option(help: str, required: bool = True):
    """--out: where a command writes; every command follows the one --out policy (bookcover.outputs)."""
    return click.option("--out", type=click.Path(path_type=Path), required=required, default=None, help=help)


def checkpoint_option(help: str, required: bool = True):
    return click.option("--checkpoint", type=click.Path(path_type=Path), required=required, default=None, help=help)


SEED_HELP = "Fixes the split, synthetic covers and shuffling."
GAN_SEED_HELP = "Fixes the noise z (and the levels of a conditional GAN): same seed, same images."


def seed_option(help=SEED_HELP):
    """--seed with the help text that says what it fixes for this command (usable bare, as @seed_option)."""
    if callable(help):  # used bare as a decorator: the default text
        return seed_option()(help)
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


gan_seed_option = seed_option(GAN_SEED_HELP)
quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Write over an --out that holds this command's own earlier output (it is removed first); "
    "a folder holding anything else is never touched.",
)


def refuse_settings_on_resume(keep: set[str]) -> None:
    """A resumed run keeps the settings it was started with: refuse any given again (only --epochs may change)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = [
        p.opts[0] for p in ctx.command.params
        if isinstance(p, click.Option) and p.name not in keep
        and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE
    ]
    if given:
        raise UsageError(
            f"--resume continues the run with its own settings: drop {', '.join(given)} (only --epochs can change)"
        )


RESUME_KEEPS = {"out", "resume", "quiet", "epochs", "overwrite"}

CLASSIFIER_CHECKPOINT_HELP = "A classifier checkpoint (best.pt)."
GAN_CHECKPOINT_HELP = "A GAN checkpoint (last.pt)."
RUN_OUT_HELP = "Run directory: new or empty (an existing run only with --resume or --overwrite)."
lr_option = click.option("--lr", type=float, default=None, help="Adam learning rate (study: 5e-4); a positive number.")

score_option = click.option(
    "--score-column",
    default=None,
    help="Rank popularity by this numeric CSV column (descending), e.g. book_rating_count. Default: list order.",
)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bookcover-fast")
def main() -> None:
    """Does a book's cover predict its popularity? CORAL-CNN, LIME and DCGAN, made fast.

    \b
    Typical session:
      bookcover-fast data synth --n 5000 --seed 1 --out covers/
      bookcover-fast train --preset quick --data covers/ --out runs/quick
      bookcover-fast evaluate --checkpoint runs/quick/best.pt
      bookcover-fast predict --checkpoint runs/quick/best.pt cover.jpg

    Covers larger than 40 megapixels (after JPEG draft decoding) are refused with one line,
    before any pixel is decoded.

    \b
    Exit codes:
      0    done
      1    failed while running; for predict and explain: some covers failed, the rest were done
      2    bad usage, or an input that cannot be used (data, checkpoint, ONNX artifact)
      130  interrupted (Ctrl-C); the message says what was kept
    """


@main.group()
def data() -> None:
    """Make synthetic covers and build the decode-once cache."""


@data.command("synth")
@click.option("--n", "n", type=click.IntRange(min=5), default=5000, show_default=True, help="How many covers.")
@seed_option
@out_option("Folder to write the covers into (new or empty).")
@overwrite_option
@quiet_option
def data_synth(n: int, seed: int, out: Path, overwrite: bool, quiet: bool) -> None:
    """Render synthetic covers with planted popularity features (badge, contrast, emblem, palette).

    Writes book_data.csv (most popular first), images/<row>.jpg and planted.json with each
    cover's features and ground-truth boxes. The rule is documented in bookcover.data.synth.
    """
    from bookcover.data.synth import synthesise

    t0 = time.perf_counter()
    synthesise(out, n=n, seed=seed, quiet=quiet, overwrite=overwrite)
    click.echo(f"wrote {n} covers to {out} in {time.perf_counter() - t0:.1f} s")


@data.command("cache")
@data_option(required=True)
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="paper", show_default=True,
              help="Build the cache `train --preset` reads: its size (quick 72 px, paper 128 px) and its covers "
              "(quick: at most 2,500).")
@click.option("--size", type=click.IntRange(min=8), default=None, help="Covers are resized to size x size "
              "(default: the preset's).")
@click.option("--levels", type=click.IntRange(min=2), default=5, show_default=True, help="Number of popularity levels K.")
@score_option
@seed_option
@out_option("Write data_summary.json and skipped_covers.csv into this folder (new or empty).", required=False)
@overwrite_option
@quiet_option
def data_cache(data: Path, preset: str, size: int | None, levels: int, score_column: str | None, seed: int,
               out: Path | None, overwrite: bool, quiet: bool) -> None:
    """Decode every cover once into the memory-mapped uint8 cache and print a summary."""
    from bookcover.classifier.config import preset as make_preset
    from bookcover.data.summary import cache_and_summarise
    from bookcover.jsonio import dumps_json

    spec = make_preset(preset)
    summary, line = cache_and_summarise(data, size=size or spec.image_size, levels=levels, score_column=score_column,
                                        seed=seed, max_covers=spec.max_covers, out=out, overwrite=overwrite, quiet=quiet)
    click.echo(dumps_json(summary))
    click.echo(line)


@main.command()
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="paper", show_default=True,
              help="quick: 2,500 covers, 72 px cache -> 64 px crops, batch 64, 6 epochs, AdamW (weight decay "
              "0.05), 1-epoch warm-up + cosine (CPU-friendly). "
              "paper: the study's Adam 5e-4 (0.9, 0.99), batch 256, 200 epochs, 128 -> 120 crops.")
@data_option(help_extra=" Default: synthetic covers generated once with --seed.")
@out_option(RUN_OUT_HELP)
@overwrite_option
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Override the preset's epochs; with --resume, extend the run to this many epochs in all.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the preset's batch size.")
@lr_option
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout before the CORAL head (the study's proposed fix for overfitting).")
@click.option("--levels", type=click.IntRange(min=2), default=None, help="Number of popularity levels K (default 5).")
@click.option("--max-covers", type=click.IntRange(min=10), default=None,
              help="Use at most this many covers, evenly spread over the ranking.")
@click.option("--image-size", type=click.IntRange(min=16), default=None, help="Cache resize (study: 128).")
@click.option("--crop", type=click.IntRange(min=16), default=None, help="Crop size (study: 120).")
@click.option("--task-weights/--no-task-weights", default=None, help="CORAL importance weights lambda_k (study: off).")
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), default=None,
              help="adam (the study; weight decay as L2) or adamw (decoupled weight decay).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None, help="Weight decay (study: 0).")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
              help="constant (the study) or cosine decay to 0 by the last step.")
@click.option("--warmup-epochs", type=click.FloatRange(min=0), default=None,
              help="Linear learning-rate warm-up from lr/100 over this many epochs.")
@click.option("--bn-recalibrate", type=click.IntRange(min=0), default=None,
              help="Re-estimate BatchNorm statistics on this many training covers before each validation "
              "(default 1024; 0 = off, the study's stale running averages).")
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Start the backbone from a local torchvision ResNet-34 state dict "
              "(torch.save(resnet34(weights=...).state_dict(), PATH); fc keys ignored). Nothing is downloaded.")
@click.option(
    "--loss-impl",
    type=click.Choice(["auto", "reference", "compiled", "triton", "cpp"]),
    default=None,
    help="CORAL loss implementation (auto: Triton on CUDA, the C++ op on CPU when built).",
)
@device_option
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "none"]), default=None,
              help="Autocast: auto = bf16 on CUDA, and on CPUs with native bf16 (AMX, AVX-512 BF16) "
              "for crops of 96 px or more; else off. fp16 uses a GradScaler.")
@click.option("--no-amp", "no_amp", is_flag=True, help="Same as --amp none (for comparison; refused beside another --amp).")
@click.option("--step-mode", type=click.Choice(["auto", "graph", "compile", "eager"]), default=None,
              help="How each training step runs. auto (default): graph on one CUDA GPU, eager on CPU, compile "
              "under torchrun on CUDA. graph: the whole step (forward, loss, backward, Adam) captured once in a CUDA "
              "graph and replayed (a captured step measured 1.7x eager on an H200). compile: torch.compile. eager: plain PyTorch.")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="--compile: same as --step-mode compile (default: off, except under torchrun on CUDA); "
              "refused beside another --step-mode.")
@click.option("--compile-mode", type=click.Choice(["default", "max-autotune", "reduce-overhead"]), default=None,
              help="torch.compile mode (for --step-mode compile).")
@click.option("--channels-last/--no-channels-last", default=None, help="channels_last memory format (default on).")
@click.option("--micro-batches", type=click.IntRange(min=1), default=None,
              help="Split each batch into this many micro-batches per process (gradient accumulation).")
@score_option
@seed_option
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from last.pt, with its own settings (--epochs N extends it).")
@quiet_option
def train(preset: str, data: Path | None, out: Path, resume: bool, overwrite: bool, quiet: bool, **overrides) -> None:
    """Train the CORAL-CNN (ResNet-34 + CORAL head) and write a run directory.

    On CUDA: bf16 autocast, channels_last, cuDNN benchmark, fused Adam, a GPU-resident uint8
    cache, and each step replayed from one CUDA graph with no host sync (--step-mode). Under
    `torchrun --nproc-per-node N` it trains with DDP.

    The run directory gets config.json, metrics.jsonl, best.pt and last.pt (atomic),
    curves.png, confusion.png, results.json and report.md with the trivial baselines.
    """
    from bookcover.classifier import preset as make_preset
    from bookcover.classifier import train_classifier
    from bookcover.options import check_train_config, merge_amp

    if resume:
        refuse_settings_on_resume(RESUME_KEEPS)
    mapping = {"levels": "num_levels", "compile_": "compile"}
    overrides["amp"] = merge_amp(overrides["amp"], overrides.pop("no_amp"))
    fields = {mapping.get(k, k): v for k, v in overrides.items()}
    if fields.get("init") is not None:
        fields["init"] = str(fields["init"])
    config = make_preset(preset, data=str(data) if data else None, **fields)
    check_train_config(config)  # before anything is decoded or written
    t0 = time.perf_counter()
    result = train_classifier(config, out, resume=resume, quiet=quiet, overwrite=overwrite, epochs=fields["epochs"])
    if result is None:  # a non-zero rank under torchrun: rank 0 reports
        return
    if "nothing_to_do" in result:
        click.echo(result["nothing_to_do"])
        return
    if "extended_from" in result:
        click.echo(f"extended the run from {result['extended_from']} to {result['epochs']} epochs")
    _echo_split("test", result["splits"]["test"])
    click.echo(f"took {time.perf_counter() - t0:.0f} s; report: {out / 'report.md'}")


def _echo_split(name: str, r: dict) -> None:
    """One split's numbers beside every baseline, then its verdict (read off the intervals)."""
    from bookcover.classifier.report import verdict

    m, b = r["model"], r["baselines"]
    ci = m.get("mae_ci95") or [float("nan")] * 2
    hist = f", histogram MAE {b['histogram']['mae']:.3f}" if "histogram" in b else ""
    click.echo(
        f"{name} MAE {m['mae']:.3f} [95 % CI {ci[0]:.3f}, {ci[1]:.3f}] RMSE {m['rmse']:.3f} acc {m['accuracy']:.3f} "
        f"(n={m['n']}) | "
        f"always-middle MAE {b['middle']['mae']:.3f}, always-majority MAE {b['majority']['mae']:.3f}, "
        f"prior MAE {b['prior']['mae']:.3f}{hist}"
    )
    click.echo(f"{name} verdict: {verdict(r)}")


@main.command()
@checkpoint_option(CLASSIFIER_CHECKPOINT_HELP)
@data_option(help_extra=" Default: the data the checkpoint was trained on.")
@click.option("--split", type=click.Choice(["test", "val", "train", "all"]), default="test", show_default=True,
              help="A split re-drawn by the checkpoint's seed, or all: every cover of the set as one result.")
@click.option("--level-column", default=None,
              help="Score against the integer levels 0..K-1 in this column of book_data.csv (or of the manifest "
              "CSV) instead of ranking the set into equal levels.")
@out_option("Write report.md, results.json and confusion.png into this folder (new or empty; never a "
            "training run's folder).", required=False)
@overwrite_option
@device_option
@quiet_option
def evaluate(checkpoint: Path, data: Path | None, split: str, level_column: str | None, out: Path | None,
             overwrite: bool, device: str, quiet: bool) -> None:
    """Evaluate a checkpoint: MAE with its 95 % interval beside the trivial and colour-histogram baselines.

    Baselines: always-middle and always-majority (the evaluated set's own most common level),
    the training prior and a ridge on colour histograms (both from the checkpoint's training
    covers); intervals are bootstrapped
    (2,000 resamples) and Spearman's rho has a permutation p.
    """
    from bookcover.classifier import evaluate_checkpoint

    results = evaluate_checkpoint(checkpoint, data=data, split=split, out=out, quiet=quiet, overwrite=overwrite,
                                  level_column=level_column, device=device)
    for name, r in results.items():
        _echo_split(name, r)
    if out is not None:
        click.echo(f"report: {out / 'report.md'}")


@main.command()
@checkpoint_option(CLASSIFIER_CHECKPOINT_HELP)
@click.argument("covers", nargs=-1, type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Also predict every image under this folder (recursive; .jpg .jpeg .png .bmp .gif .webp .tif).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line, streamed batch by batch: path, level, expected_level, probas, "
              "level_probs; or path, error for a cover that cannot be read.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Covers per model call.")
@device_option
@quiet_option
def predict(checkpoint: Path, covers: tuple[Path, ...], images: Path | None, as_json: bool, batch_size: int, device: str,
            quiet: bool) -> None:
    """Predict the popularity level (0 = least, K-1 = most popular) of each COVER.

    Results stream as each batch finishes. level is CORAL's rank, the number of P(level > k)
    above 0.5; it can differ from argmax(level_probs), the most likely single level.
    expected_level is sum_k P(level > k). Covers over 40 megapixels are refused.

    A cover that cannot be read gets a one-line error on stderr (and an error record with
    --json); the rest are still predicted.

    \b
    Exit codes: 0 all predicted; 1 some covers failed, the rest were predicted;
    2 bad usage, checkpoint or folder; 130 interrupted.
    """
    from tqdm.auto import tqdm

    from bookcover.classifier import iter_predictions, load_classifier
    from bookcover.data.images import cover_paths

    paths = cover_paths(covers, images, "predict")
    clf = load_classifier(checkpoint, device)
    failed = done = 0
    with tqdm(total=len(paths), desc="predicting", unit="cover", disable=quiet) as bar, \
            closing(iter_predictions(clf, paths, batch_size)) as stream:  # closing stops its decoding threads
        try:
            for r in stream:
                if as_json:
                    line = json.dumps(r)
                elif "error" not in r:
                    probas = " ".join(f"{p:.3f}" for p in r["probas"])
                    levels = " ".join(f"{p:.3f}" for p in r["level_probs"])
                    line = (f"{r['path']}: level {r['level']}  expected {r['expected_level']:.2f}  "
                            f"P(level=k) [{levels}]  P(level>k) [{probas}]")
                else:
                    line = None
                # Counted just before the write: Ctrl-C lands after a write's flush far more often
                # than in the few instructions before it, and a written line is kept.
                done += 1
                if "error" in r:
                    failed += 1
                    bar.write(f"error: {r['path']}: {r['error']}", file=sys.stderr)
                if line is not None:
                    click.echo(line)
                bar.update()
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; {done} covers done") from None
    if failed:
        sys.exit(1)


@main.command()
@data_option(required=True)
@out_option("Study folder to create (new or empty; with --overwrite, an earlier study's own output is replaced).")
@overwrite_option
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Train N seeds, --seed to --seed + N - 1 (each: its own split, initialisation and shuffling).")
@seed_option("The first of the --seeds training seeds (each fixes its run's split, initialisation and shuffling).")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True,
              help="The training preset every run uses.")
@click.option("--heldout", type=click.Path(path_type=Path), default=None,
              help="Also score every seed on this labelled set (whole), e.g. another list's covers.")
@click.option("--level-column", default=None,
              help="The --heldout set's integer levels 0..K-1 come from this CSV column (else it is ranked into equal levels).")
@click.option("--fractions", default="0.25,0.5,1", show_default=True,
              help="Learning curve: train on these shares of the training covers.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the preset's epochs.")
@click.option("--max-covers", type=click.IntRange(min=10), default=None, help="Override the preset's max covers.")
@click.option("--image-size", type=click.IntRange(min=16), default=None, help="Override the cache resize.")
@click.option("--crop", type=click.IntRange(min=16), default=None, help="Override the crop size.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the preset's batch size.")
@device_option
@score_option
@quiet_option
def study(data: Path, out: Path, overwrite: bool, seeds: int, seed: int, preset: str, heldout: Path | None,
          level_column: str | None, fractions: str, quiet: bool, **overrides) -> None:
    """Does the cover carry signal? Train over seeds, score with intervals, answer in one sentence.

    Trains the preset for each seed, scores each seed's test covers (and --heldout) beside
    always-middle, the training prior and a colour-histogram ridge, with bootstrap intervals
    and Spearman permutation tests; repeats on 25/50 % of the training covers for a learning
    curve; writes report.md (verdict, decision rule, tables), study.json, seeds.png and
    learning_curve.png, and every run under runs/.
    """
    from bookcover.classifier.study import run_study
    from bookcover.options import parse_fractions

    shares = parse_fractions(fractions)
    t0 = time.perf_counter()
    summary = run_study(data, out, seeds=seeds, preset_name=preset, heldout=heldout, level_column=level_column,
                        fractions=shares, overrides={k: v for k, v in overrides.items() if v is not None}, quiet=quiet,
                        first_seed=seed, overwrite=overwrite)
    click.echo(f"verdict: {summary['verdict']}. {summary['sentence']}")
    if "heldout_sentence" in summary:
        click.echo(f"held-out verdict: {summary['heldout_verdict']}. {summary['heldout_sentence']}")
    click.echo(f"took {time.perf_counter() - t0:.0f} s; report: {out / 'report.md'}")


# --- export commands (issue 4) ---


@main.command("export")
@checkpoint_option(CLASSIFIER_CHECKPOINT_HELP)
@out_option("Artifact folder to create (must be new or empty).")
@overwrite_option
@click.option("--fp16", is_flag=True, help="Also write model.fp16.onnx (network in float16), validated at 1e-2.")
@data_option(help_extra=" Default: the data the checkpoint was trained on (its test split is the parity set).")
@click.option("--max-covers", type=click.IntRange(min=1), default=None,
              help="Validate on at most this many held-out covers, evenly spread (default: the whole test split).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--triton-repo", type=click.Path(path_type=Path), default=None,
              help="Also write a Triton Inference Server model repository: DIR/bookcover/config.pbtxt + 1/model.onnx.")
@device_option
@quiet_option
def export_cmd(checkpoint: Path, out: Path, overwrite: bool, fp16: bool, data: Path | None, max_covers: int | None,
               opset: int, device: str, quiet: bool, triton_repo: Path | None = None) -> None:
    """Export a checkpoint to an ONNX artifact for torch-free serving (contract: export/README.md).

    Runs onnx.checker (full_check) and parity against PyTorch (on --device) on the held-out split; fails with
    a non-zero exit if either fails. Writes model.onnx, validation.json and manifest.json, and
    prints each model's sha256: keep it somewhere you trust and pin it where the model is loaded
    (export/predict.py --expect-sha256), since manifest.json detects corruption, not tampering.
    """
    from bookcover.export import export_artifact

    if triton_repo is not None:
        from bookcover.serve.triton_repo import check_target

        check_target(triton_repo)  # refused before any work, not after
    t0 = time.perf_counter()
    validation = export_artifact(checkpoint, out, fp16=fp16, data=data, max_covers=max_covers, opset=opset,
                                 quiet=quiet, overwrite=overwrite, device=device)
    for name, v in validation["variants"].items():
        click.echo(
            f"{name}: parity on {v['n']} held-out covers: probas max abs diff {v['probas_max_abs_diff']:.2e} "
            f"(atol {v['atol']:g}), rank agreement {v['rank_agreement']:.4f}"
        )
    for name, v in validation["variants"].items():
        click.echo(f"{name}: sha256 {v['sha256']}")
    click.echo(f"artifact: {out} ({time.perf_counter() - t0:.0f} s)")
    if triton_repo is not None:
        from bookcover.serve.triton_repo import write_triton_repo

        click.echo(f"triton model repository: {write_triton_repo(out, triton_repo)}")
    click.echo("manifest.json catches corruption, not tampering: pin the model where it is loaded with "
               "predict.py --expect-sha256 (or explain --onnx DIR --expect-sha256)")


# --- the cache folder ---


@main.group()
def cache() -> None:
    """List or clean the cache folder ($BOOKCOVER_CACHE, else ~/.cache/bookcover-fast): decoded covers and
    generated synthetic covers, rebuilt on demand."""


@cache.command("list")
def cache_list() -> None:
    """Each entry of the cache folder with its size, and the total."""
    from bookcover.data.cache import cache_entries, default_cache_root, human_bytes

    entries = cache_entries()
    for e in entries:
        click.echo(f"{human_bytes(e.bytes):>9}  {e.path.name}  ({e.detail})")
    total = sum(e.bytes for e in entries)
    click.echo(f"{len(entries)} entries, {human_bytes(total)} in {default_cache_root()}")


@cache.command("clean")
def cache_clean() -> None:
    """Delete every entry `cache list` shows (each is rebuilt when a command needs it again).

    Only folders this program made are deleted, recognised by name and contents; anything else
    in the cache folder is left alone, as is an unfinished build changed within the last hour.
    """
    from bookcover.data.cache import clean_cache, default_cache_root, human_bytes

    removed, kept = clean_cache()
    for e in kept:
        click.echo(f"kept {e.path.name}: {e.detail}, changed within the hour (another process may be building it)")
    click.echo(f"removed {len(removed)} entries, {human_bytes(sum(e.bytes for e in removed))} from {default_cache_root()}")


# --- explain commands (issue 5) ---


@main.command()
@checkpoint_option(CLASSIFIER_CHECKPOINT_HELP, required=False)
@click.option("--onnx", type=click.Path(path_type=Path), default=None,
              help="An ONNX artifact folder (model.onnx), verified against its manifest.json.")
@click.option("--expect-sha256", metavar="HEX", default=None,
              help="With --onnx: refuse the model unless its sha256 is this (the one export printed).")
@click.argument("covers", nargs=-1, type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Also explain every image under this folder (recursive, as predict --images).")
@out_option("Output folder for overlays, JSON and report (new or empty).")
@overwrite_option
@click.option("--segmenter", type=click.Choice(["quickshift", "slic"]), default="quickshift", show_default=True,
              help="quickshift: the study's kernel_size=4, max_dist=200, ratio=0.2.")
@click.option("--segment-size", type=click.IntRange(min=0), default=256, show_default=True,
              help="Segment the model input resampled to this many px square (about 40-65 quickshift superpixels "
              "on a cover); 0: at the input's own size, lime's default (3-7 superpixels at 72 px).")
@click.option("--samples", type=click.IntRange(min=2), default=1000, show_default=True, help="Perturbations per cover.")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Perturbations per model call (default: as many as fit in memory).")
@click.option("--hide-color", type=click.FloatRange(0, 255), default=None,
              help="Constant fill for hidden superpixels (the study: 0). Default: each superpixel's mean colour.")
@click.option("--target", type=click.Choice(["proba", "expected"]), default="proba", show_default=True,
              help="proba: the CORAL probability P(level > k) that carries the predicted level r (k = r-1, or 0 "
              "when r = 0). expected: the expected level sum_k P(level > k).")
@device_option
@click.option("--workers", default="auto", show_default=True,
              help="Processes that segment the next covers while the model explains the current one (0: none, "
              "in turn). auto: up to 4 on a GPU, none on the CPU (the model uses every core there). Same results.")
@seed_option("Fixes the masks: same seed, same weights.")
@quiet_option
def explain(checkpoint, onnx, expect_sha256, covers, images, out, overwrite, segmenter, segment_size, samples, batch,
            hide_color, target, device, workers, seed, quiet):
    """Explain the predicted popularity of each COVER with LIME, many perturbations per model call.

    Writes <cover>.overlay.png (the original cover, superpixels tinted by weight: green raises
    the target, magenta lowers it, the border the model never sees hatched; with a legend),
    <cover>.overlay_lime.png (lime's own rendering, for parity), <cover>.weights.json
    (per-superpixel weights, intercept, R², faithfulness), sheet.png and report.md with deletion /
    insertion AUCs against random orders and, on synthetic covers, the badge pointing game.

    \b
    Exit codes: 0 all explained; 1 some covers failed, the rest were explained;
    2 bad usage, checkpoint or artifact; 130 interrupted.
    """
    from bookcover.data.images import cover_paths
    from bookcover.explain.prepare import CoverPipeline, ExplainOptions, resolve_workers
    from bookcover.explain.run import explain_covers

    paths = cover_paths(covers, images, "explain")
    if (checkpoint is None) == (onnx is None):
        raise UsageError("give exactly one of --checkpoint or --onnx")
    if onnx is not None:
        from bookcover.devices import onnx_providers

        onnx_providers(device)  # --device cuda with no CUDA provider: one line now, before any worker starts
    n_workers = resolve_workers(workers, "cpu" if onnx else device, len(paths))
    # The workers start (and import their libraries) while the model loads.
    with CoverPipeline(n_workers) as pipeline:
        from bookcover.explain.adapters import load_model

        model = load_model(checkpoint, onnx, device, expect_sha256)
        options = ExplainOptions(samples=samples, segmenter=segmenter, hide_color=hide_color, target=target,
                                 seed=seed, batch=batch, segment_size=segment_size or None)
        kind = "checkpoint" if checkpoint else "onnx"
        desc = f"{kind} {checkpoint or onnx} ({model.image_size[0]} px, crop {model.crop})"
        result = explain_covers(model, paths, out, options, desc, quiet=quiet, pipeline=pipeline, overwrite=overwrite)
    for s in result.skipped:
        click.echo(f"skipped: {s}", err=True)
    if not result.explained:
        click.echo(f"nothing was explained: none of the {len(result.skipped)} covers could be read; no report written",
                   err=True)
        sys.exit(1)
    click.echo(f"explained {len(result.explained)} covers; report: {result.report}")
    if result.skipped:
        sys.exit(1)


# --- gan commands (issue 6) ---


@main.group()
def gan() -> None:
    """DCGAN of popular covers (the study's Table 1), evaluated offline, and popularity search."""


@gan.command("train")
@click.option(
    "--preset",
    type=click.Choice(["quick", "paper"]),
    default="paper",
    show_default=True,
    help="quick: 1,000 covers (600 in the top 3 levels), batch 8, 16 epochs (1,200 steps), 256 evaluation samples "
    "(CPU-friendly; same models, optimiser and preprocessing). paper: the study's batch 128, 200 epochs.",
)
@data_option(help_extra=" Default: synthetic covers generated once with --seed. Only the top 3 of 5 levels are used.")
@out_option(RUN_OUT_HELP)
@overwrite_option
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Override the preset's epochs; with --resume, extend the run to this many epochs in all.")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="Override the preset's batch size.")
@lr_option
@click.option(
    "--beta1",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Adam beta1 (default 0.5, DCGAN's own; 0.9 is torch's default).",
)
@click.option(
    "--noise",
    type=click.Choice(["normal", "uniform"]),
    default=None,
    help="z distribution: normal (default; the study's code) or uniform [0, 1) (the study's text).",
)
@click.option(
    "--conditional", is_flag=True, default=None, help="Feed the popularity level to G and D (beyond the study)."
)
@click.option(
    "--max-covers",
    type=click.IntRange(min=10),
    default=None,
    help="Use at most this many covers, evenly spread over the ranking.",
)
@click.option(
    "--classifier",
    type=click.Path(path_type=Path),
    default=None,
    help="A CORAL checkpoint: adds FID/KID on its features to the final evaluation.",
)
@click.option("--no-eval", is_flag=True, help="Skip the evaluation at the end.")
@device_option
@click.option("--amp", type=click.Choice(["auto", "bf16", "none"]), default=None,
              help="Autocast: auto = bf16 on CUDA, off on CPU; bf16; none (default: auto).")
@score_option
@seed_option
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from last.pt, with its own settings (--epochs N extends it).")
@quiet_option
def gan_train(
    preset: str,
    data: Path | None,
    out: Path,
    overwrite: bool,
    classifier: Path | None,
    no_eval: bool,
    resume: bool,
    quiet: bool,
    **overrides,
) -> None:
    """Train the DCGAN on the covers of the 3 most popular of 5 levels and write a run directory.

    Short edge to 80, random crop 64, [-1, 1]; Adam, BCE. The run directory gets config.json,
    metrics.jsonl, last.pt (atomic), grids/epoch_XXX.png, curves.png and, unless --no-eval,
    evaluation.json and report.md. On CUDA it uses bf16 AMP and torch.compile.
    """
    from bookcover.gan.config import gan_preset
    from bookcover.gan.train import train_gan
    from bookcover.options import check_gan_config

    if resume:
        refuse_settings_on_resume(RESUME_KEEPS | {"no_eval", "classifier"})
    config = gan_preset(preset, data=str(data) if data else None, **overrides)
    check_gan_config(config)  # before anything is decoded or written
    t0 = time.perf_counter()
    result = train_gan(config, out, resume=resume, quiet=quiet, evaluate=not no_eval, classifier=classifier,
                       overwrite=overwrite, epochs=overrides["epochs"])
    if "nothing_to_do" in result:
        click.echo(result["nothing_to_do"])
        return
    if "extended_from" in result:
        click.echo(f"extended the run from {result['extended_from']} to {result['epochs']} epochs")
    click.echo(f"trained {result['steps']} steps in {time.perf_counter() - t0:.0f} s; grids: {out / 'grids'}")
    for w in sorted(set(result["warnings"])):
        click.echo(f"warning: {w}", err=True)
    if "evaluation" in result:
        click.echo(result["evaluation"]["verdict"])
        if "fid_kid" in result["evaluation"]:
            click.echo(result["evaluation"]["trust"])
        click.echo(f"report: {out / 'report.md'}")


@gan.command("sample")
@checkpoint_option(GAN_CHECKPOINT_HELP)
@click.option("--n", "n", type=click.IntRange(min=1), default=128, show_default=True, help="How many samples.")
@out_option("Grid PNG (a new file); the images go to <stem>_images/ (new or empty).")
@overwrite_option
@click.option(
    "--nrow",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Images per row (conditional: one row per level).",
)
@gan_seed_option
@device_option
@quiet_option
def gan_sample(checkpoint: Path, n: int, out: Path, overwrite: bool, nrow: int, seed: int, device: str, quiet: bool) -> None:
    """Draw N samples as a grid (8x16 for 128, like the study's Figure 8) plus individual PNGs."""
    from bookcover.gan.sampling import load_generator, sample_grid

    res = sample_grid(load_generator(checkpoint, device), n, out, seed=seed, nrow=nrow, quiet=quiet, overwrite=overwrite)
    click.echo(f"grid: {res['grid']} ({res['n']} images, {res['nrow']} per row); images: {res['images']}")


@gan.command("evaluate")
@checkpoint_option(GAN_CHECKPOINT_HELP)
@out_option("Folder for report.md, evaluation.json and PNGs (new or empty).")
@overwrite_option
@data_option(help_extra=" Default: the data the GAN was trained on.")
@click.option("--classifier", type=click.Path(path_type=Path), default=None, help="A CORAL checkpoint for FID/KID.")
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=2),
    default=None,
    help="Generated images (default: the run's eval_samples, at most half the real covers).",
)
@seed_option("Fixes the noise z, the split of the real covers into halves and the random projections.")
@device_option
@quiet_option
def gan_evaluate(
    checkpoint: Path,
    out: Path,
    overwrite: bool,
    data: Path | None,
    classifier: Path | None,
    n: int | None,
    seed: int,
    device: str,
    quiet: bool,
) -> None:
    """SWD (and FID/KID with --classifier), diversity and memorisation, beside real-vs-real and noise."""
    from bookcover.gan.evaluate import evaluate_run

    ev = evaluate_run(checkpoint, out, data=data, classifier=classifier, n=n, seed=seed, quiet=quiet, device=device,
                      overwrite=overwrite)
    s = ev["swd"]
    click.echo(
        f"SWD x1e3 (mean): generated {s['generated']['mean']:.2f}, real-vs-real {s['real_vs_real']['mean']:.2f}, "
        f"noise {s['noise']['mean']:.2f}"
    )
    if "fid_kid" in ev:
        f = ev["fid_kid"]
        click.echo(
            f"FID: generated {f['generated']['fid']:.2f}, real-vs-real {f['real_vs_real']['fid']:.2f}, "
            f"noise {f['noise']['fid']:.2f}"
        )
    click.echo(ev["trust"])
    click.echo(f"memorisation: {ev['memorisation']['flagged']} of {ev['n']} flagged as copies")
    click.echo(f"report: {out / 'report.md'}")


@gan.command("search")
@checkpoint_option(GAN_CHECKPOINT_HELP)
@click.option(
    "--classifier", type=click.Path(path_type=Path), required=True, help="A CORAL checkpoint that scores popularity."
)
@out_option("Folder for search_top.png, search.md, search.json (new or empty).")
@overwrite_option
@click.option("--candidates", type=click.IntRange(min=2), default=2048, show_default=True, help="How many z to sample.")
@click.option("--top", type=click.IntRange(min=1), default=64, show_default=True, help="How many to keep.")
@gan_seed_option
@device_option
@quiet_option
def gan_search(
    checkpoint: Path, classifier: Path, out: Path, overwrite: bool, candidates: int, top: int, seed: int, device: str,
    quiet: bool,
) -> None:
    """The "most popular cover": keep the samples a CORAL model rates highest, beside random ones."""
    from bookcover.classifier import load_classifier
    from bookcover.gan.sampling import load_generator
    from bookcover.gan.search import search_popular

    res = search_popular(
        load_generator(checkpoint, device),
        load_classifier(classifier, device),
        out,
        candidates=candidates,
        top=top,
        seed=seed,
        quiet=quiet,
        overwrite=overwrite,
    )
    fmt = " ".join
    click.echo(
        f"predicted levels, top {top}: [{fmt(f'{v:.2f}' for v in res['top_levels'])}]  "
        f"random {top}: [{fmt(f'{v:.2f}' for v in res['random_levels'])}]"
    )
    click.echo(f"mean expected level: top {res['top_expected_mean']:.2f}, random {res['random_expected_mean']:.2f}")
    click.echo(f"grid: {out / 'search_top.png'}; report: {out / 'search.md'}")

# --- score command (issue 20) ---


@main.command()
@click.option("--artifact", type=click.Path(path_type=Path), required=True,
              help="An ONNX artifact folder (or its model file), verified against its manifest.json.")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Score every image under this folder (recursive); a study-layout folder (book_data.csv) gives "
              "images/<row>.jpg per row.")
@click.option("--manifest", type=click.Path(path_type=Path), default=None,
              help="Score the covers of a CSV or Parquet list with a path column (relative to the list's folder).")
@out_option("Parquet dataset folder (new or empty; an earlier job's with --resume).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a decode pool and one onnxruntime session. ray: Ray Data (pip install 'bookcover-fast[ray]').")
@click.option("--address", default=None, help="With --engine ray: join this cluster (auto, ray://HOST:10001); "
              "default: a local Ray instance for the job.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local: decode workers (default: the cores). ray: onnxruntime actors (default 1).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime intra-op threads per session (default: the cores; ray: cluster CPUs / actors).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Covers per model call.")
@click.option("--shard-size", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Rows per Parquet shard: a kill loses at most the shards being written.")
@click.option("--expect-sha256", metavar="HEX", default=None,
              help="Refuse the model unless its sha256 is this (the one export printed).")
@click.option("--resume", is_flag=True, help="Continue the job in --out: score only the covers it does not hold yet.")
@quiet_option
def score(artifact: Path, images: Path | None, manifest: Path | None, out: Path, engine: str, address: str | None,
          workers: int | None, threads: int | None, batch_size: int, shard_size: int, expect_sha256: str | None,
          resume: bool, quiet: bool) -> None:
    """Score a whole catalogue into a resumable Parquet dataset (OUT/part-*.parquet + summary.json).

    One row per cover: path, level, expected_level, probas, level_probs, error (null, or why the
    cover could not be read), model_sha256. A bad cover is an error row; the job goes on. Read the
    rows with pandas.read_parquet(sorted(glob.glob("OUT/part-*.parquet"))), or DuckDB or Polars
    on 'OUT/part-*.parquet'. After a kill, --resume scores only the covers OUT does not hold.

    \b
    Exit codes: 0 done (error rows included); 2 bad usage, list, OUT or artifact (a wrong
    --expect-sha256); 130 interrupted (the shards written are complete: --resume).
    """
    from bookcover.score import ScoreOptions, score_catalogue
    from bookcover.score.summary import summary_line

    options = ScoreOptions(engine=engine, batch_size=batch_size, workers=workers, threads=threads, shard_rows=shard_size,
                           expect_sha256=expect_sha256, address=address, resume=resume, quiet=quiet)
    summary = score_catalogue(artifact, out, images=images, manifest=manifest, options=options)
    click.echo(summary_line(summary, out))


# --- serve command (issue 19) ---


@main.command()
@click.option("--artifact", type=click.Path(path_type=Path), required=True,
              help="An ONNX artifact folder (bookcover-fast export), verified against its manifest.json.")
@click.option("--expect-sha256", metavar="HEX", default=None,
              help="Refuse to start unless model.onnx has this sha256 (the one export printed).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port; the first line says which).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Most covers per ONNX Runtime call (dynamic batching).")
@click.option("--max-delay-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Longest wait for more covers to fill a batch (only while more are being decoded).")
@click.option("--max-queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Most requests waiting for the model; beyond it: 503 with Retry-After, at once.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Largest request body; larger: 413.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="ONNX Runtime intra-op threads (default: every core).")
@checkpoint_option("The best.pt the artifact was exported from: turns on the page's LIME explanations.", required=False)
@click.option("--explain-samples", type=click.IntRange(min=2), default=1000, show_default=True,
              help="LIME perturbations per explained cover.")
@click.option("--log-level", type=click.Choice(["warning", "info", "debug"]), default="warning", show_default=True,
              help="info adds an access log; debug adds tracebacks of unexpected errors.")
def serve(**options) -> None:
    """Serve an artifact over HTTP: the Open Inference Protocol (KServe v2) at /v2, multipart
    uploads at /v1/covers:predict, a page at /, Prometheus metrics at /metrics.

    \b
    SIGTERM: stop accepting, answer what was accepted, exit 0. Ctrl-C: the same, exit 130.
    Needs the serve extra: pip install -e '.[serve]'.
    """
    try:
        from bookcover.serve.server import ServeConfig
        from bookcover.serve.server import serve as run_server
    except ImportError as exc:
        raise UsageError(f"serve needs the serve extra ({exc.name} is missing): pip install -e '.[serve]'") from None
    run_server(ServeConfig(**options), announce=lambda line: click.echo(line, err=True))


if __name__ == "__main__":  # pragma: no cover
    main()
