"""The bookcover-fast command line: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from bookcover import __version__
from bookcover.errors import BookcoverError


class FriendlyGroup(click.Group):
    """Turn library errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BookcoverError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished checkpoints are kept (resume with --resume)", err=True)
            sys.exit(130)


def data_option(required: bool = False, help_extra: str = ""):
    return click.option(
        "--data",
        type=click.Path(path_type=Path),
        required=required,
        help="Covers in the study's layout (book_data.csv + images/<row>.jpg) or a manifest CSV "
        "with columns path,score." + help_extra,
    )


seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Fixes the split, synthetic covers and shuffling.")
quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
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
    """


@main.group()
def data() -> None:
    """Make synthetic covers and build the decode-once cache."""


@data.command("synth")
@click.option("--n", "n", type=click.IntRange(min=5), default=5000, show_default=True, help="How many covers.")
@seed_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the covers into.")
@quiet_option
def data_synth(n: int, seed: int, out: Path, quiet: bool) -> None:
    """Render synthetic covers with planted popularity features (badge, contrast, emblem, palette).

    Writes book_data.csv (most popular first), images/<row>.jpg and planted.json with each
    cover's features and ground-truth boxes. The rule is documented in bookcover.data.synth.
    """
    from bookcover.data.synth import synthesise

    if (out / "book_data.csv").exists():
        raise BookcoverError(f"{out} already holds a dataset (book_data.csv); choose another --out")
    t0 = time.perf_counter()
    synthesise(out, n=n, seed=seed, quiet=quiet)
    click.echo(f"wrote {n} covers to {out} in {time.perf_counter() - t0:.1f} s")


@data.command("cache")
@data_option(required=True)
@click.option("--size", type=click.IntRange(min=8), default=128, show_default=True, help="Covers are resized to size x size.")
@click.option("--levels", type=click.IntRange(min=2), default=5, show_default=True, help="Number of popularity levels K.")
@score_option
@seed_option
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write data_summary.json and skipped_covers.csv here.")
@quiet_option
def data_cache(data: Path, size: int, levels: int, score_column: str | None, seed: int, out: Path | None, quiet: bool) -> None:
    """Decode every cover once into the memory-mapped uint8 cache and print a summary."""
    from bookcover.data.dataset import prepare_dataset

    t0 = time.perf_counter()
    ds = prepare_dataset(data, size=(size, size), num_levels=levels, seed=seed, score_column=score_column, quiet=quiet)
    took = time.perf_counter() - t0
    summary = ds.summary()
    built = ds.cache.build_seconds
    summary["cache"] = str(ds.cache.directory)
    summary["cache_built_seconds"] = built
    if built:
        summary["covers_per_second"] = (len(ds.cache.paths) + len(ds.cache.skipped)) / built
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "data_summary.json").write_text(json.dumps(summary, indent=2))
        ds.write_skipped(out / "skipped_covers.csv")
    click.echo(json.dumps(summary))
    click.echo(("built" if built else "reused") + f" cache in {took:.1f} s; {len(ds.cache.skipped)} covers skipped")


@main.command()
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="paper", show_default=True,
              help="quick: 2,500 covers, 72 px cache -> 64 px crops, batch 64, 6 epochs (CPU-friendly). "
              "paper: the study's Adam 5e-4 (0.9, 0.99), batch 256, 200 epochs, 128 -> 120 crops.")
@data_option(help_extra=" Default: synthetic covers generated once with --seed.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Run directory.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the preset's epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the preset's batch size.")
@click.option("--lr", type=float, default=None, help="Adam learning rate (study: 5e-4).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None, help="Dropout before the CORAL head (the study's proposed fix for overfitting).")
@click.option("--levels", type=click.IntRange(min=2), default=None, help="Number of popularity levels K (default 5).")
@click.option("--max-covers", type=click.IntRange(min=10), default=None, help="Use at most this many covers, evenly spread over the ranking.")
@click.option("--image-size", type=click.IntRange(min=16), default=None, help="Cache resize (study: 128).")
@click.option("--crop", type=click.IntRange(min=16), default=None, help="Crop size (study: 120).")
@click.option("--task-weights/--no-task-weights", default=None, help="CORAL importance weights lambda_k (study: off).")
@click.option("--loss-impl", type=click.Choice(["auto", "reference"]), default=None, help="CORAL loss implementation.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto).")
@score_option
@seed_option
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt.")
@quiet_option
def train(preset: str, data: Path | None, out: Path, resume: bool, quiet: bool, **overrides) -> None:
    """Train the CORAL-CNN (ResNet-34 + CORAL head) and write a run directory.

    The run directory gets config.json, metrics.jsonl, best.pt and last.pt (atomic),
    curves.png, confusion.png, results.json and report.md with the trivial baselines.
    """
    from bookcover.train.classifier import train_classifier
    from bookcover.train.config import preset as make_preset

    mapping = {"levels": "num_levels"}
    fields = {mapping.get(k, k): v for k, v in overrides.items()}
    config = make_preset(preset, data=str(data) if data else None, **fields)
    t0 = time.perf_counter()
    result = train_classifier(config, out, resume=resume, quiet=quiet)
    test = result["splits"]["test"]
    click.echo(
        f"test MAE {test['model']['mae']:.3f} (always-middle {test['baselines']['middle']['mae']:.3f}, "
        f"always-majority {test['baselines']['majority']['mae']:.3f}); took {time.perf_counter() - t0:.0f} s"
    )
    click.echo(f"report: {out / 'report.md'}")


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A classifier checkpoint (best.pt).")
@data_option(help_extra=" Default: the data the checkpoint was trained on.")
@click.option("--split", type=click.Choice(["test", "val", "train", "all"]), default="test", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write report.md, results.json and confusion.png here.")
@quiet_option
def evaluate(checkpoint: Path, data: Path | None, split: str, out: Path | None, quiet: bool) -> None:
    """Evaluate a checkpoint: MAE, RMSE and accuracy beside the trivial baselines."""
    from bookcover.train.evaluate import evaluate_checkpoint

    results = evaluate_checkpoint(checkpoint, data=data, split=split, out=out, quiet=quiet)
    for name, r in results.items():
        m, b = r["model"], r["baselines"]
        click.echo(
            f"{name}: n={m['n']} MAE {m['mae']:.3f} RMSE {m['rmse']:.3f} acc {m['accuracy']:.3f} | "
            f"always-middle MAE {b['middle']['mae']:.3f}, always-majority MAE {b['majority']['mae']:.3f}"
        )
    if out is not None:
        click.echo(f"report: {out / 'report.md'}")


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A classifier checkpoint (best.pt).")
@click.argument("covers", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: path, level, probas, level_probs.")
@click.option("--device", default="auto", show_default=True)
def predict(checkpoint: Path, covers: tuple[Path, ...], as_json: bool, device: str) -> None:
    """Predict the popularity level (0 = least, K-1 = most popular) of each COVER.

    A cover that cannot be read gets a one-line error on stderr; the rest are still predicted,
    and the exit code is 1 if any failed.
    """
    from bookcover.inference import load_classifier, predict_files

    clf = load_classifier(checkpoint, device)
    failed = 0
    for r in predict_files(clf, list(covers)):
        if "error" in r:
            failed += 1
            click.echo(f"error: {r['error']}", err=True)
            continue
        if as_json:
            click.echo(json.dumps(r))
        else:
            probas = " ".join(f"{p:.3f}" for p in r["probas"])
            levels = " ".join(f"{p:.3f}" for p in r["level_probs"])
            click.echo(f"{r['path']}: level {r['level']}  P(level=k) [{levels}]  P(level>k) [{probas}]")
    if failed:
        sys.exit(1)


# --- export commands (issue 4) ---


# --- explain commands (issue 5) ---


@main.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="A classifier checkpoint (best.pt).")
@click.option("--onnx", type=click.Path(path_type=Path), default=None, help="An ONNX artifact folder (model.onnx).")
@click.argument("covers", nargs=-1, type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(path_type=Path), default=None, help="Explain every image in this folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (overlays, JSON, report).")
@click.option("--segmenter", type=click.Choice(["quickshift", "slic"]), default="quickshift", show_default=True,
              help="quickshift: the study's kernel_size=4, max_dist=200, ratio=0.2.")
@click.option("--samples", type=click.IntRange(min=2), default=1000, show_default=True, help="Perturbations per cover.")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Perturbations per model call (default: as many as fit in memory).")
@click.option("--hide-color", type=click.FloatRange(0, 255), default=None,
              help="Constant fill for hidden superpixels (the study: 0). Default: each superpixel's mean colour.")
@click.option("--target", type=click.Choice(["proba", "expected"]), default="proba", show_default=True,
              help="proba: the CORAL probability P(level > k) that carries the predicted level r (k = r-1, or 0 "
              "when r = 0). expected: the expected level sum_k P(level > k).")
@click.option("--device", default="auto", show_default=True, help="For --checkpoint: cpu, cuda, ...")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes the masks: same seed, same weights.")
@quiet_option
def explain(checkpoint, onnx, covers, images, out, segmenter, samples, batch, hide_color, target, device, seed, quiet):
    """Explain the predicted popularity of each COVER with LIME, thousands of perturbations per call.

    Writes <cover>.overlay.png (positive superpixels green, negative red), <cover>.weights.json
    (per-superpixel weights, intercept, R², faithfulness), sheet.png and report.md with deletion /
    insertion AUCs against random orders and, on synthetic covers, the badge pointing game.
    """
    from bookcover.explain.adapters import load_model
    from bookcover.explain.explainer import ExplainOptions
    from bookcover.explain.run import explain_covers, images_in

    paths = list(covers) + (images_in(images) if images is not None else [])
    if not paths:
        raise BookcoverError("nothing to explain: give COVER files or --images DIR")
    model = load_model(checkpoint, onnx, device)
    options = ExplainOptions(samples=samples, segmenter=segmenter, hide_color=hide_color, target=target, seed=seed,
                             batch=batch)
    kind = "checkpoint" if checkpoint else "onnx"
    desc = f"{kind} {checkpoint or onnx} ({model.image_size[0]} px, crop {model.crop})"
    result = explain_covers(model, paths, out, options, desc, quiet=quiet)
    for s in result.skipped:
        click.echo(f"skipped: {s}", err=True)
    click.echo(f"explained {len(result.explained)} covers; report: {result.report}")
    if result.skipped:
        sys.exit(1)


# --- gan commands (issue 6) ---


if __name__ == "__main__":  # pragma: no cover
    main()
