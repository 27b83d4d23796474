"""Run-directory helpers: config.json and metrics.jsonl, JSON without NaN, the --out policy, estimates."""

import json

import pytest

from bookcover.runs import (
    OutPathError,
    append_metrics,
    check_out_dir,
    locate_recorded_data,
    prepare_out_dir,
    prepare_out_file,
    read_metrics,
    rewind_metrics,
    write_config,
)


def test_metrics_round_trip_and_rewind(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_metrics(path) == []
    append_metrics(path, [{"epoch": 1, "v": 1.5}, {"kind": "step", "epoch": 2}])
    append_metrics(path, [{"epoch": 3}])
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2, 3]
    kept = rewind_metrics(path, 2)
    assert [r["epoch"] for r in kept] == [1, 2]
    assert read_metrics(path) == kept
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_write_config(tmp_path):
    write_config(tmp_path, {"config": {"seed": 1}})
    assert json.loads((tmp_path / "config.json").read_text()) == {"config": {"seed": 1}}


# --- JSON: null for undefined numbers ---------------------------------------------------------


def test_nan_and_inf_are_written_as_null_and_read_back_as_nan(tmp_path):
    import math

    import numpy as np

    from bookcover.runs import dumps_json, write_json

    record = {"mae": float("nan"), "up": float("inf"), "n": np.int64(3), "x": np.float32(0.5), "v": [np.nan, 1.0]}
    text = dumps_json(record)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"mae": None, "up": None, "n": 3, "x": 0.5, "v": [None, 1.0]}
    write_json(tmp_path / "r.json", record)
    json.loads((tmp_path / "r.json").read_text(), parse_constant=_reject)  # strict: no bare NaN
    append_metrics(tmp_path / "m.jsonl", [{"epoch": 1, "val_mae": float("nan")}])
    for line in (tmp_path / "m.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=_reject)
    assert math.isnan(read_metrics(tmp_path / "m.jsonl")[0]["val_mae"])


def _reject(name):
    raise ValueError(f"bare {name} is not JSON")


# --- the --out policy -------------------------------------------------------------------------

def test_new_and_empty_folders_are_fine(tmp_path):
    assert prepare_out_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "empty").mkdir()
    assert prepare_out_dir(tmp_path / "empty") == tmp_path / "empty"


def test_a_file_in_the_way_is_one_line_naming_the_flag(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("keep")
    for target in (f, f / "sub"):
        with pytest.raises(OutPathError) as info:
            prepare_out_dir(target, "--out", overwrite=True)
        assert str(info.value).startswith(f"--out {target}:") and "\n" not in str(info.value)
    assert f.read_text() == "keep"


def test_a_folder_with_files_is_refused_unless_overwrite_and_ours(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.md").write_text("old")
    (run / ".last.pt.abc.tmp").write_bytes(b"x")
    with pytest.raises(OutPathError, match="--out .*already holds files.*--overwrite"):
        prepare_out_dir(run)
    assert (run / "report.md").read_text() == "old"
    assert prepare_out_dir(run, resume=True) == run and (run / "report.md").exists()
    prepare_out_dir(run, overwrite=True)
    assert list(run.iterdir()) == []


def test_overwrite_never_deletes_what_is_not_ours(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (mine / "report.md").write_text("ours by name")
    with pytest.raises(OutPathError, match="thesis.tex.*choose a new or empty folder"):
        prepare_out_dir(mine, "--out", overwrite=True)
    assert (mine / "thesis.tex").read_text() == "years of work" and (mine / "report.md").exists()
    with pytest.raises(OutPathError):  # a command's own patterns decide what is ours
        check_out_dir(mine, overwrite=True, ours=("*.md",))


def test_out_file_policy(tmp_path):
    f = tmp_path / "grid.png"
    assert prepare_out_file(tmp_path / "new" / "grid.png").parent.is_dir()
    f.write_bytes(b"png")
    with pytest.raises(OutPathError, match="--out .*grid.png: already exists.*--overwrite"):
        prepare_out_file(f)
    assert prepare_out_file(f, overwrite=True) == f and f.read_bytes() == b"png"
    with pytest.raises(OutPathError, match="is a folder"):
        prepare_out_file(tmp_path, overwrite=True)


# --- recorded data paths ----------------------------------------------------------------------


def test_a_relative_recorded_data_path_is_found_from_the_run_or_refused_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "proj" / "covers").mkdir(parents=True)
    ckpt = tmp_path / "proj" / "runs" / "r" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # "covers" does not exist from here
    assert locate_recorded_data("covers", ckpt) == str(tmp_path / "proj" / "covers")
    assert locate_recorded_data(None, ckpt) is None
    with pytest.raises(Exception, match="'elsewhere'.*tried .*pass --data") as info:
        locate_recorded_data("elsewhere", ckpt)
    assert "\n" not in str(info.value)
    with pytest.raises(Exception, match="no longer exists; pass --data"):
        locate_recorded_data(str(tmp_path / "gone"), ckpt)


# --- the run-time estimate --------------------------------------------------------------------


def test_estimate_line_mentions_quick_only_for_long_paper_runs():
    from bookcover.runs import estimate_line

    long = estimate_line(33 * 3600, "train", "paper", 200, 200)
    assert "33.0 h" in long and "whole run" in long and "--preset quick" in long
    assert "--preset quick" not in estimate_line(33 * 3600, "train", "quick", 200, 200)
    assert "--preset quick" not in estimate_line(600, "train", "paper", 200, 200)
    assert "remaining 4 epochs" in estimate_line(60, "train", "paper", 4, 10)


def test_run_estimate_extrapolates_the_timed_steps(capsys):
    from bookcover.runs import RunEstimate

    now = {"t": 0.0}
    est = RunEstimate("train", "paper", 0, epochs=10, steps_per_epoch=100, probe=5, clock=lambda: now["t"])
    for step in range(7):
        est(0, step)
        now["t"] += 2.0  # 2 s a step
    assert est.line is not None and "33 min" in est.line  # 1000 steps x 2 s
    assert capsys.readouterr().err.strip() == est.line
    quiet = RunEstimate("train", "paper", 0, 10, 100, quiet=True, clock=lambda: now["t"])
    for step in range(7):
        quiet(0, step)
    assert quiet.line is None


def test_follow_umask(tmp_path):
    import os
    import stat
    import tempfile

    from bookcover.runs import current_umask, follow_umask

    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        fd, name = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        follow_umask(name)
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o640
        folder = tempfile.mkdtemp(dir=tmp_path)
        follow_umask(folder, directory=True)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750
    finally:
        os.umask(old)
