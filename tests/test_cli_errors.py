"""One-line errors, exit codes and Ctrl-C messages of the CLI (issue 11, items 11, 12, 14, 21, 22)."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, GAN_KIND, save_atomic
from bookcover.cli import main
from tests.data.test_large_covers import png_header_only


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


class Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


@pytest.mark.parametrize("kind", ["junk", "truncated", "evil", "wrong kind"])
def test_bad_checkpoints_exit_2_without_suggesting_the_unsafe_fix(tiny_run, tmp_path, kind):
    path = tmp_path / "model.pt"
    if kind == "junk":
        path.write_bytes(b"junk")
    elif kind == "truncated":
        path.write_bytes((tiny_run / "best.pt").read_bytes()[:5000])
    elif kind == "evil":
        with open(path, "wb") as fh:
            pickle.dump({"kind": CLASSIFIER_KIND, "x": Evil()}, fh)
    else:
        save_atomic({"kind": GAN_KIND}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(main, ["predict", "--checkpoint", str(path), "cover.jpg"])
    assert [str(w.message) for w in caught] == []  # no torch warning lines around the error
    assert res.exit_code == 2
    line = one_line(res.output)
    assert "weights_only" not in line and "arbitrary code ran" not in res.output
    if kind == "wrong kind":
        assert "expected 'bookcover-fast/coral-classifier'" in line
    else:
        assert line == (f"Error: {path}: cannot be loaded safely: not a bookcover-fast checkpoint (or written by an "
                        "untrusted program), or a corrupt or truncated file")


def test_too_large_cover_is_named_for_what_it_is(tiny_run, tmp_path, synth_covers):
    bomb = png_header_only(tmp_path / "bomb.png", 20_000, 20_000)
    res = CliRunner().invoke(main, ["predict", "--checkpoint", str(tiny_run / "best.pt"), str(bomb),
                                    str(synth_covers / "images" / "0.jpg"), "--quiet"])
    assert res.exit_code == 1  # one cover failed, the other was predicted
    line = one_line(res.stderr)
    assert "too large to decode (400 megapixels)" in line and "decompression bomb" in line and "corrupt" not in line
    assert "level" in res.stdout


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["explain", "--out", str(tmp_path / "o"), "x.jpg"])
    assert res.exit_code == 2 and "exactly one" in one_line(res.output)
    res = runner.invoke(main, ["explain", "--onnx", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nothing to explain" in one_line(res.output)
    res = runner.invoke(main, ["explain", "--onnx", str(tmp_path), "--images", str(tmp_path / "none"), "--out",
                               str(tmp_path / "o")])
    assert res.exit_code == 2 and "does not exist" in res.output and not (tmp_path / "o").exists()
    res = runner.invoke(main, ["train", "--preset", "nope", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and not (tmp_path / "r").exists()


def test_help_lists_exit_codes_and_the_size_limit():
    runner = CliRunner()
    top = " ".join(runner.invoke(main, ["--help"]).output.split())
    for needle in ("Exit codes:", "0 done", "1 failed while running; for predict and explain: some covers failed",
                   "2 bad usage, or an input that cannot be used", "130 interrupted", "40 megapixels"):
        assert needle in top, needle
    explain = " ".join(runner.invoke(main, ["explain", "--help"]).output.split())
    assert "Exit codes: 0 all explained; 1 some covers failed, the rest were explained" in explain
    assert "--expect-sha256" in explain and "overlay_lime.png" in explain


@pytest.mark.parametrize("command", [("gan", "sample"), ("gan", "search")])
def test_gan_sampling_commands_have_their_own_seed_help_and_quiet(command):
    out = " ".join(CliRunner().invoke(main, [*command, "--help"]).output.split())
    assert "--quiet" in out and "Fixes the noise z" in out
    assert "split, synthetic covers and shuffling" not in out  # train's text, which does not apply
    assert "cpu, cuda, cuda:N or mps. [default: auto]" in out  # the shared --device (issue 18)


def _train_interrupted(monkeypatch, module: str, name: str, kind: str, epochs_done: int):
    """Replace a training loop by one that saves `epochs_done` epochs to last.pt, then gets Ctrl-C."""

    def fake(config, out, *args, **kwargs):
        if epochs_done:
            save_atomic({"kind": kind, "epoch": epochs_done}, Path(out) / "last.pt")
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, fake)


@pytest.mark.parametrize("command,target,kind", [
    (["train", "--preset", "quick"], "bookcover.classifier.train_classifier", CLASSIFIER_KIND),
    (["gan", "train", "--preset", "quick"], "bookcover.gan.train.train_gan", GAN_KIND),
])
def test_ctrl_c_during_training_says_where_to_resume(monkeypatch, tmp_path, command, target, kind):
    import importlib

    module_name, attr = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    for epochs_done, expected in ((3, "interrupted; {out}/last.pt holds epoch 3: continue with --resume"),
                                  (0, "interrupted before the first epoch finished; {out} holds no checkpoint to "
                                      "resume from")):
        out = tmp_path / f"run{epochs_done}"
        _train_interrupted(monkeypatch, module, attr, kind, epochs_done)
        res = CliRunner().invoke(main, [*command, "--out", str(out)], prog_name="python -m bookcover.cli")
        assert res.exit_code == 130
        assert one_line(res.stderr) == expected.format(out=out)


def test_ctrl_c_during_export_says_nothing_was_published(monkeypatch, tmp_path):
    import bookcover.export

    def fake(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bookcover.export, "export_artifact", fake)
    res = CliRunner().invoke(main, ["export", "--checkpoint", "x.pt", "--out", str(tmp_path / "a")])
    assert res.exit_code == 130 and "no artifact was published" in one_line(res.stderr)


def test_ctrl_c_during_explain_counts_the_covers_done(monkeypatch, tmp_path, synth_covers):
    import bookcover.explain.run
    from tests.explain.helpers import export_tiny_onnx

    out = tmp_path / "explain"
    out.mkdir()
    (out / "old.weights.json").write_text("{}")  # from an earlier run: not counted
    past = 1_000_000_000
    os.utime(out / "old.weights.json", (past, past))

    def fake(model, paths, out_dir, *args, **kwargs):
        for p in paths[:2]:
            (out_dir / f"{Path(p).stem}.weights.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(bookcover.explain.run, "explain_covers", fake)
    covers = [str(synth_covers / "images" / f"{i}.jpg") for i in range(4)]
    res = CliRunner().invoke(main, ["explain", "--onnx", str(export_tiny_onnx(tmp_path / "artifact")), *covers,
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 130
    assert one_line(res.stderr) == f"interrupted; 2 covers done (their overlays and weights are in {out}; no report.md)"
