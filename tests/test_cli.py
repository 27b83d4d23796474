"""The CLI: helpful --help everywhere, one-line errors, predict keeps going past bad covers."""

import json

import pytest
from click.testing import CliRunner

from bookcover.cli import main


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", [()] + list(_commands(main)))
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


def test_shared_flags_mean_the_same_everywhere():
    for path in (("train",), ("data", "synth"), ("data", "cache")):
        out = CliRunner().invoke(main, [*path, "--help"]).output
        assert "--seed" in out and "--quiet" in out


def test_missing_data_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "no such file" in result.output and "Traceback" not in result.output


def test_wrong_checkpoint_kind(tmp_path):
    import torch

    torch.save({"kind": "bookcover-fast/dcgan"}, tmp_path / "g.pt")
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(tmp_path / "g.pt"), "x.jpg"])
    assert result.exit_code != 0 and "expected" in result.output and "Traceback" not in result.output


def test_predict_json_and_bad_cover(tiny_run, synth_covers, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    good = [str(synth_covers / "images" / f"{i}.jpg") for i in (0, 199)]
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(tiny_run / "best.pt"), "--json", good[0], str(bad), good[1],
                                       "--quiet"])
    assert result.exit_code == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["path"] for x in lines] == [good[0], str(bad), good[1]]
    assert set(lines[1]) == {"path", "error"}
    for x in (lines[0], lines[2]):
        assert 0 <= x["level"] <= 4 and len(x["probas"]) == 4 and abs(sum(x["level_probs"]) - 1) < 1e-5
    assert "bad.jpg" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_evaluate_writes_report(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--split", "all",
                                       "--out", str(tmp_path / "eval"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "always-middle MAE" in result.output
    assert (tmp_path / "eval" / "report.md").is_file() and (tmp_path / "eval" / "confusion.png").is_file()


def test_data_synth_and_cache(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["data", "synth", "--n", "30", "--seed", "2", "--out", str(tmp_path / "c"), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["data", "cache", "--data", str(tmp_path / "c"), "--size", "32", "--out", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.splitlines()[0])
    assert summary["covers"] == 30 and summary["per_level"] == [6] * 5
    again = runner.invoke(main, ["data", "synth", "--n", "30", "--out", str(tmp_path / "c")])
    assert again.exit_code != 0 and "already holds" in again.output


def _old_style_checkpoint(tiny_run, folder, recorded: str):
    """tiny_run's best.pt as code before issue 11 wrote it: the data path as typed (relative)."""
    import torch

    ckpt = torch.load(tiny_run / "best.pt", weights_only=True)
    ckpt["config"]["data"] = recorded
    folder.mkdir(parents=True)
    torch.save(ckpt, folder / "best.pt")
    return folder / "best.pt"


def test_old_checkpoint_with_a_relative_data_path_evaluates_from_another_folder(tiny_run, synth_covers, tmp_path,
                                                                                 monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "covers").symlink_to(synth_covers)  # training ran in proj/ with --data covers
    best = _old_style_checkpoint(tiny_run, tmp_path / "proj" / "runs" / "r", "covers")
    monkeypatch.chdir(tmp_path)  # "covers" means nothing from here
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(best), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "test MAE" in result.output and "(n=" in result.output


@pytest.mark.parametrize("command", [["evaluate"], ["export", "--out", "art"]])
def test_a_recorded_data_path_not_found_is_one_line_saying_pass_data(command, tiny_run, tmp_path, monkeypatch):
    best = _old_style_checkpoint(tiny_run, tmp_path / "runs" / "r", "gone/covers")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*command, "--checkpoint", str(best), "--quiet"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'gone/covers'" in lines[0] and "tried" in lines[0] and "pass --data" in lines[0]
    assert not (tmp_path / "art").exists()
