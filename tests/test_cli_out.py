"""One --out policy for every command (issues 11, 18): a new or empty folder; an existing run only
with --resume; anything else is a one-line error naming the flag, unless --overwrite, which
replaces only what the command's own record (.bookcover-outputs.json) lists, unchanged.
Nothing the user already has is ever lost."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from bookcover.checkpoint import GAN_KIND, save_atomic
from bookcover.cli import main
from bookcover.gan.config import gan_preset
from bookcover.gan.model import build_gan
from bookcover.outputs import RECORD_FILE
from tests.user_files import fingerprint, make_user_folder


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory, synth_covers):
    """An untrained narrow GAN checkpoint: enough for every command that only reads one."""
    torch.manual_seed(0)
    g, d = build_gan(ngf=8, ndf=8)
    config = gan_preset("quick", data=str(synth_covers), ngf=8, ndf=8, max_covers=100, eval_samples=8)
    path = tmp_path_factory.mktemp("gan-ckpt") / "last.pt"
    save_atomic({"kind": GAN_KIND, "format": 1, "config": config.to_dict(), "epoch": 1,
                 "generator": g.state_dict(), "discriminator": d.state_dict()}, path)
    return path


def commands(tiny_run, synth_covers, gan_checkpoint) -> dict[str, list[str]]:
    """Every command that takes --out, with the arguments it needs besides --out."""
    best, cover = str(tiny_run / "best.pt"), str(synth_covers / "images" / "0.jpg")
    return {
        "data synth": ["data", "synth", "--n", "10", "--quiet"],
        "data cache": ["data", "cache", "--data", str(synth_covers), "--size", "16", "--quiet"],
        "train": ["train", "--preset", "quick", "--data", str(synth_covers), "--quiet"],
        "evaluate": ["evaluate", "--checkpoint", best, "--quiet"],
        "export": ["export", "--checkpoint", best, "--quiet"],
        "explain": ["explain", "--checkpoint", best, cover, "--samples", "8", "--quiet"],
        "gan train": ["gan", "train", "--preset", "quick", "--data", str(synth_covers), "--quiet"],
        "gan evaluate": ["gan", "evaluate", "--checkpoint", str(gan_checkpoint), "--quiet"],
        "gan search": ["gan", "search", "--checkpoint", str(gan_checkpoint), "--classifier", best,
                       "--candidates", "4", "--top", "2"],
        "gan sample": ["gan", "sample", "--checkpoint", str(gan_checkpoint), "--n", "2"],
    }


NAMES = ["data synth", "data cache", "train", "evaluate", "export", "explain", "gan train", "gan evaluate",
         "gan search", "gan sample"]


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a clean exit, not a crash
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --out"), result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("name", NAMES)
def test_out_naming_an_existing_file_is_one_line_and_keeps_the_file(name, tiny_run, synth_covers, gan_checkpoint,
                                                                     tmp_path):
    keep = tmp_path / "f.txt"
    keep.write_text("keep")
    args = commands(tiny_run, synth_covers, gan_checkpoint)[name]
    for extra in ([], ["--overwrite"]):
        result = CliRunner().invoke(main, [*args, "--out", str(keep), *extra])
        one_line_error(result, str(keep))
        assert keep.read_text() == "keep"
    below = CliRunner().invoke(main, [*args, "--out", str(keep / "sub" / "x.png")])
    one_line_error(below, "is a file, not a folder")
    assert keep.read_text() == "keep"


@pytest.mark.parametrize("name", NAMES)
def test_a_users_study_folder_survives_every_command_even_with_overwrite(name, tiny_run, synth_covers,
                                                                         gan_checkpoint, goodreads_sample, tmp_path):
    """Real covers, their book_data.csv and files named like ours (report.md, config.json,
    results.json, model.onnx, x.overlay.png, 2023-beach.png): refused in one line, every md5 kept."""
    mine = make_user_folder(tmp_path / "mine", goodreads_sample)
    before = fingerprint(mine)
    args = commands(tiny_run, synth_covers, gan_checkpoint)[name]
    # gan sample writes a grid file and <stem>_images/: aim both at the user's files.
    targets = [mine / "2023-beach.png", tmp_path / "mine.png"] if name == "gan sample" else [mine]
    if name == "gan sample":
        (tmp_path / "mine_images").symlink_to(mine)
    for target in targets:
        for extra in ([], ["--overwrite"]):
            result = CliRunner().invoke(main, [*args, "--out", str(target), *extra])
            assert result.exit_code == 2, result.output
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: --out"), result.output
            assert fingerprint(mine) == before
    assert not (mine / RECORD_FILE).exists()


def test_gan_sample_refuses_an_existing_grid_unless_overwrite(gan_checkpoint, tmp_path):
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"an earlier grid, not recorded")
    args = ["gan", "sample", "--checkpoint", str(gan_checkpoint), "--n", "3", "--out", str(grid)]
    one_line_error(CliRunner().invoke(main, args), "already exists", "--overwrite")
    one_line_error(CliRunner().invoke(main, [*args, "--overwrite"]), "no record says `gan sample` wrote it")
    assert grid.read_bytes() == b"an earlier grid, not recorded"
    grid.unlink()
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    one_line_error(CliRunner().invoke(main, args), "already exists", "--overwrite")
    done = CliRunner().invoke(main, [*args, "--overwrite"])
    assert done.exit_code == 0, done.output
    assert grid.read_bytes().startswith(b"\x89PNG") and len(list((tmp_path / "grid_images").glob("*.png"))) == 3
    again = CliRunner().invoke(main, [*args[:-2], "--n", "2", "--out", str(grid), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "grid_images").iterdir()) == [RECORD_FILE, "0001.png", "0002.png"]
    no_suffix = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "grid")])
    one_line_error(no_suffix, "image file")


def test_overwrite_replaces_a_commands_own_output(synth_covers, tmp_path):
    out = tmp_path / "covers"
    first = CliRunner().invoke(main, ["data", "synth", "--n", "12", "--out", str(out), "--quiet"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, ["data", "synth", "--n", "10", "--out", str(out), "--quiet"])
    one_line_error(again, "already holds the output of `data synth`", "--overwrite")
    assert len(list((out / "images").iterdir())) == 12
    over = CliRunner().invoke(main, ["data", "synth", "--n", "10", "--out", str(out), "--quiet", "--overwrite"])
    assert over.exit_code == 0, over.output
    assert len(list((out / "images").iterdir())) == 10  # not 10 new covers among 12 old ones
    (out / "images" / "0.jpg").write_bytes(b"the user replaced a cover")
    changed = CliRunner().invoke(main, ["data", "synth", "--n", "10", "--out", str(out), "--quiet", "--overwrite"])
    one_line_error(changed, "images/0.jpg (size 25", "changed since")
    assert (out / "images" / "0.jpg").read_bytes() == b"the user replaced a cover"
    assert len(list((out / "images").iterdir())) == 10


def test_evaluate_overwrites_its_own_report_but_never_a_training_run(tiny_run, tmp_path):
    best = str(tiny_run / "best.pt")
    out = tmp_path / "eval"
    assert CliRunner().invoke(main, ["evaluate", "--checkpoint", best, "--out", str(out), "--quiet"]).exit_code == 0
    one_line_error(CliRunner().invoke(main, ["evaluate", "--checkpoint", best, "--out", str(out), "--quiet"]))
    again = CliRunner().invoke(main, ["evaluate", "--checkpoint", best, "--out", str(out), "--quiet", "--overwrite"])
    assert again.exit_code == 0, again.output
    before = {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    into_run = CliRunner().invoke(main, ["evaluate", "--checkpoint", best, "--out", str(tiny_run), "--overwrite"])
    one_line_error(into_run, "holds a training run")
    assert {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()} == before


# --- --resume -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["train"], ["gan", "train"]])
def test_resume_without_last_pt_is_one_line(command, synth_covers, tmp_path):
    for out in (tmp_path / "none", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        result = CliRunner().invoke(main, [*command, "--out", str(out), "--resume", "--quiet"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.output.strip().splitlines() == [
            f"Error: --resume: {out} holds no last.pt to continue (drop --resume to start a new run)"
        ]
    assert not (tmp_path / "none").exists() and list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("command", [["train"], ["gan", "train"]])
def test_resume_refuses_settings_it_would_ignore(command, tiny_run):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    result = CliRunner().invoke(main, [*command, "--out", str(tiny_run), "--resume", "--lr", "0.1", "--seed", "3"])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: --resume continues the run with its own settings: drop --lr, --seed " \
                                    "(only --epochs can change)"
    both = CliRunner().invoke(main, [*command, "--out", str(tiny_run), "--resume", "--overwrite"])
    assert both.exit_code == 2 and "only one of them" in both.output
    assert {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()} == before


@pytest.mark.parametrize("name", ["data cache", "explain", "gan evaluate", "gan search"])
def test_overwrite_replaces_exactly_what_the_record_lists(name, tiny_run, synth_covers, gan_checkpoint, tmp_path):
    """Every file a command writes is in its record, so its own --overwrite can replace it all."""
    import json

    out = tmp_path / "out"
    args = [*commands(tiny_run, synth_covers, gan_checkpoint)[name], "--out", str(out)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    record = json.loads((out / RECORD_FILE).read_text())
    assert record["command"] == name
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != RECORD_FILE}
    assert written == set(record["entries"]) and written
    assert all(e["size"] is not None for e in record["entries"].values() if e["kind"] == "file")
    one_line_error(CliRunner().invoke(main, args), f"already holds the output of `{name}`", "--overwrite")
    again = CliRunner().invoke(main, [*args, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.name != RECORD_FILE} == written
