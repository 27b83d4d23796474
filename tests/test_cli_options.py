"""One meaning per flag, and every value checked before anything is written (issue 18, items 5 and 6).

Each bad input must give exit 2 (exit 1 where covers failed while running), exactly one line,
and leave --out absent: a corrected rerun is never refused because a first try left files.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from bookcover.cli import main
from bookcover.errors import UsageError

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")


def refused(args: list[str], out, expected: str, code: int = 2) -> None:
    """The command exits with `code`, says exactly `expected` in one line and writes no --out."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a clean exit, not a crash
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines == [expected], result.output
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


def device_commands(tmp_path, out) -> dict[str, list[str]]:
    """Every command that runs a model, with placeholders for what --device is checked before."""
    ck, cover = str(tmp_path / "x.pt"), str(tmp_path / "c.jpg")
    return {
        "train": ["train", "--out", str(out)],
        "evaluate": ["evaluate", "--checkpoint", ck, "--out", str(out)],
        "predict": ["predict", "--checkpoint", ck, cover],
        "study": ["study", "--data", str(tmp_path), "--out", str(out)],
        "export": ["export", "--checkpoint", ck, "--out", str(out)],
        "explain": ["explain", "--checkpoint", ck, cover, "--out", str(out)],
        "gan train": ["gan", "train", "--out", str(out)],
        "gan sample": ["gan", "sample", "--checkpoint", ck, "--out", str(out / "grid.png")],
        "gan evaluate": ["gan", "evaluate", "--checkpoint", ck, "--out", str(out)],
        "gan search": ["gan", "search", "--checkpoint", ck, "--classifier", ck, "--out", str(out)],
    }


DEVICE_COMMANDS = ["train", "evaluate", "predict", "study", "export", "explain", "gan train", "gan sample",
                   "gan evaluate", "gan search"]


@pytest.mark.parametrize("name", DEVICE_COMMANDS)
def test_every_device_command_has_the_one_device_option_defaulting_to_auto(name, tmp_path):
    args = device_commands(tmp_path, tmp_path / "o")[name]
    path = args[: 2 if args[0] == "gan" else 1]
    text = " ".join(CliRunner().invoke(main, [*path, "--help"]).output.split())
    assert ("--device TEXT Where the model runs: auto (a CUDA GPU when one is visible, else the CPU), cpu, cuda, "
            "cuda:N or mps. [default: auto]") in text


@no_gpu
@pytest.mark.parametrize("name", DEVICE_COMMANDS)
def test_device_cuda_without_a_gpu_is_one_line_before_anything_is_written(name, tmp_path):
    out = tmp_path / "out"
    refused([*device_commands(tmp_path, out)[name], "--device", "cuda"], out,
            "Error: --device cuda: no CUDA GPU is visible; use --device cpu or auto")


@pytest.mark.parametrize("device", ["banana", "cuda:x", "cpu:1"])
def test_an_unknown_device_is_one_line(device, tmp_path):
    out = tmp_path / "out"
    refused(["train", "--out", str(out), "--device", device], out,
            f"Error: --device {device}: not a device; use auto, cpu, cuda, cuda:N or mps")


@pytest.mark.parametrize("command", [["train"], ["gan", "train"]])
@pytest.mark.parametrize("lr", ["-1", "nan", "0"])
def test_a_learning_rate_that_is_not_positive_is_refused(command, lr, tmp_path):
    out = tmp_path / "out"
    refused([*command, "--out", str(out), "--lr", lr], out,
            f"Error: --lr {float(lr):g}: the learning rate must be a positive number")


def test_a_crop_larger_than_the_image_is_refused_before_any_cover_is_read(tmp_path):
    out = tmp_path / "out"
    # The data does not exist: had the covers been read first, the error would say so.
    refused(["train", "--data", str(tmp_path / "nope"), "--out", str(out), "--image-size", "32", "--crop", "64"], out,
            "Error: --crop 64 is larger than --image-size 32: covers are resized to the image size before they "
            "are cropped")


@pytest.mark.parametrize("flags,expected", [
    (["--step-mode", "eager", "--compile"],
     "--step-mode eager and --compile contradict each other: pass one of them (--compile is --step-mode compile)"),
    (["--step-mode", "graph", "--compile"],
     "--step-mode graph and --compile contradict each other: pass one of them (--compile is --step-mode compile)"),
    (["--step-mode", "compile", "--no-compile"],
     "--step-mode compile and --no-compile contradict each other: pass one of them"),
    (["--amp", "bf16", "--no-amp"], "--amp bf16 and --no-amp contradict each other: pass one of them"),
])
def test_conflicting_flags_are_refused_not_resolved(flags, expected, tmp_path):
    out = tmp_path / "out"
    refused(["train", "--out", str(out), *flags], out, f"Error: {expected}")


@no_gpu
def test_graph_step_mode_on_the_cpu_is_a_usage_error(tmp_path):
    out = tmp_path / "out"
    refused(["train", "--out", str(out), "--step-mode", "graph"], out,
            "Error: --step-mode graph needs a CUDA device; use --step-mode eager or compile on cpu")


def test_manifest_csv_with_a_misnamed_column_is_refused_not_swapped(tmp_path):
    """A manifest beside a book_data.csv must not silently train on the book_data.csv."""
    covers = tmp_path / "covers"
    (covers / "images").mkdir(parents=True)
    (covers / "book_data.csv").write_text("book_title\n" + "".join(f"t{i}\n" for i in range(50)))
    mine = covers / "mine.csv"
    mine.write_text("file,score\n" + "".join(f"images/{i}.jpg,{i}\n" for i in range(50)))
    out = tmp_path / "out"
    expected = f"Error: {mine}: missing column(s) path (found: file, score)"
    refused(["data", "cache", "--data", str(mine), "--out", str(out), "--quiet"], out, expected)
    lone = tmp_path / "bad" / "manifest.csv"  # and with no CSV beside it: no traceback either
    lone.parent.mkdir()
    lone.write_text("file,score\na.jpg,1\n")
    refused(["train", "--data", str(lone), "--out", str(out), "--quiet"], out,
            f"Error: {lone}: missing column(s) path (found: file, score)")


@pytest.mark.parametrize("fractions,expected", [
    ("abc", "--fractions abc: give numbers in (0, 1] separated by commas, e.g. 0.25,0.5,1"),
    ("0,2", "--fractions 0,2: 0, 2 are not in (0, 1]; give shares of the training covers, e.g. 0.25,0.5,1"),
    ("0.5,1.5", "--fractions 0.5,1.5: 1.5 is not in (0, 1]; give shares of the training covers, e.g. 0.25,0.5,1"),
])
def test_bad_fractions_are_a_usage_error(fractions, expected, tmp_path):
    out = tmp_path / "out"
    refused(["study", "--data", str(tmp_path), "--out", str(out), "--fractions", fractions], out, f"Error: {expected}")


def test_study_has_seed_and_overwrite():
    text = " ".join(CliRunner().invoke(main, ["study", "--help"]).output.split())
    assert "--seed INTEGER The first of the --seeds training seeds" in text
    assert "--overwrite" in text


def test_predict_names_an_images_folder_without_covers(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a cover")
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(tmp_path / "x.pt"), "--images", str(empty)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: --images {empty}: the folder holds no covers (.jpg .jpeg .png .bmp .gif .webp .tif .tiff)"]


def test_explain_with_every_cover_unreadable_writes_no_report(tmp_path):
    from tests.explain.helpers import export_tiny_onnx

    artifact = export_tiny_onnx(tmp_path / "artifact")
    bad = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for path in bad:
        path.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["explain", "--onnx", str(artifact), *map(str, bad), "--out", str(out),
                                       "--samples", "8", "--quiet", "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert [line.startswith("skipped: ") for line in lines] == [True, True, False]
    assert lines[-1] == "nothing was explained: none of the 2 covers could be read; no report written"
    assert result.stdout == ""
    assert not (out / "report.md").exists() and not list(out.glob("*.png"))


def test_onnx_on_cuda_is_refused_when_onnxruntime_has_no_cuda_provider():
    import onnxruntime as ort

    from bookcover.devices import onnx_providers

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert onnx_providers("auto")[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert onnx_providers("cuda:1")[0] == ("CUDAExecutionProvider", {"device_id": 1})
        return
    with pytest.raises(UsageError, match=r"^--device cuda: this onnxruntime has no CUDA provider"):
        onnx_providers("cuda")


def test_gan_amp_error_names_an_option_gan_train_has(monkeypatch):
    from bookcover.gan.config import gan_preset
    from bookcover.gan.train import _amp_context

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(UsageError) as caught:
        _amp_context(gan_preset("quick", amp="auto"), torch.device("cuda"))
    assert str(caught.value) == "--amp auto: this GPU has no bf16 support; pass --amp none"
    text = " ".join(CliRunner().invoke(main, ["gan", "train", "--help"]).output.split())
    assert "--amp [auto|bf16|none]" in text


def test_out_of_memory_is_one_line():
    from bookcover.cli_support import OutOfMemory, as_user_error

    error = as_user_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail"))
    assert isinstance(error, OutOfMemory) and error.exit_code == 1
    assert str(error) == ("out of memory on the device (CUDA out of memory. Tried to allocate 2.00 GiB); lower "
                          "--batch-size, or use --device cpu")
    assert as_user_error(RuntimeError("a bug")) is None  # anything else keeps its traceback


def test_shared_option_helpers_take_their_help_text():
    import click

    from bookcover.cli import checkpoint_option, device_option, out_option, overwrite_option, quiet_option, seed_option

    @click.command()
    @out_option("Where to write.")
    @checkpoint_option("A model.", required=False)
    @seed_option("Fixes the thing.")
    @device_option
    @quiet_option
    @overwrite_option
    def cmd(**kwargs):
        click.echo(repr(sorted(kwargs.items())))

    @click.command()
    @seed_option
    def bare(seed):
        click.echo(seed)

    text = " ".join(CliRunner().invoke(cmd, ["--help"]).output.split())
    assert "--out PATH Where to write. [required]" in text and "--seed INTEGER Fixes the thing." in text
    assert CliRunner().invoke(bare, ["--seed", "3"]).output.strip() == "3"
