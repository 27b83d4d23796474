"""The --out policy and its ownership record (issue 18): --overwrite deletes only what the
command itself recorded writing, unchanged; a folder without that record is never touched."""

from __future__ import annotations

import json

import pytest

from bookcover.outputs import (
    RECORD_FILE,
    OutPathError,
    check_out_dir,
    check_out_file,
    claim,
    file_record,
    prepare_out_dir,
    prepare_out_file,
    recorded_command,
    remove_output,
    settle,
    settle_file,
    writing,
)
from tests.user_files import fingerprint, make_user_folder


def _one_line(info, start: str) -> str:
    text = str(info.value)
    assert text.startswith(start) and "\n" not in text, text
    return text


def test_new_and_empty_folders_get_a_record_of_the_command(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b", "train")
    assert out.is_dir() and recorded_command(out) == "train"
    (tmp_path / "empty").mkdir()
    assert prepare_out_dir(tmp_path / "empty", "explain") == tmp_path / "empty"
    record = json.loads((tmp_path / "empty" / RECORD_FILE).read_text())
    assert record["command"] == "explain" and record["entries"] == {}


def test_a_file_in_the_way_is_one_line_naming_the_flag(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("keep")
    for target in (f, f / "sub"):
        with pytest.raises(OutPathError) as info:
            prepare_out_dir(target, "train", overwrite=True)
        _one_line(info, f"--out {target}:")
    assert f.read_text() == "keep"


def test_a_users_study_folder_is_never_touched_even_with_overwrite(tmp_path, goodreads_sample):
    mine = make_user_folder(tmp_path / "mine", goodreads_sample)
    before = fingerprint(mine)
    for command in ("data synth", "train", "evaluate", "explain", "export", "gan sample"):
        for overwrite in (False, True):
            with pytest.raises(OutPathError) as info:
                prepare_out_dir(mine, command, overwrite=overwrite)
            assert "no bookcover-fast command recorded" in _one_line(info, f"--out {mine}:")
        with pytest.raises(OutPathError):
            prepare_out_dir(mine, command, resume=True)
    assert fingerprint(mine) == before and not (mine / RECORD_FILE).exists()


def _our_run(folder, command="train"):
    out = prepare_out_dir(folder, command)
    with writing(out, "report.md", "config.json", "grids/epoch_001.png"):
        (out / "report.md").write_text("ours")
        (out / "config.json").write_text("{}")
        (out / "grids").mkdir()
        (out / "grids" / "epoch_001.png").write_bytes(b"png")
    return out


def test_overwrite_removes_exactly_the_recorded_entries_record_last(tmp_path):
    out = _our_run(tmp_path / "run")
    with pytest.raises(OutPathError, match="already holds the output of `train`; pass --overwrite"):
        prepare_out_dir(out, "train")
    plan = check_out_dir(out, "train", overwrite=True)
    assert plan[-1] == out / RECORD_FILE and plan.index(out / "grids" / "epoch_001.png") < plan.index(out / "grids")
    prepare_out_dir(out, "train", overwrite=True)
    assert [p.name for p in out.iterdir()] == [RECORD_FILE]
    assert json.loads((out / RECORD_FILE).read_text())["entries"] == {}


def test_another_commands_output_is_refused(tmp_path):
    out = _our_run(tmp_path / "run", "gan train")
    with pytest.raises(OutPathError, match="output of `gan train`, not of `train`"):
        prepare_out_dir(out, "train", overwrite=True)
    assert (out / "report.md").read_text() == "ours"


def test_an_unrecorded_or_changed_file_blocks_overwrite(tmp_path):
    out = _our_run(tmp_path / "run")
    (out / "2023-beach.png").write_bytes(b"photo")
    (out / "grids" / "notes.txt").write_text("mine")
    with pytest.raises(OutPathError) as info:
        prepare_out_dir(out, "train", overwrite=True)
    assert "did not write (2023-beach.png, grids/notes.txt)" in _one_line(info, f"--out {out}:")
    (out / "2023-beach.png").unlink()
    (out / "grids" / "notes.txt").unlink()
    (out / "report.md").write_text("the user edited our report")
    with pytest.raises(OutPathError) as info:
        prepare_out_dir(out, "train", overwrite=True)
    assert "were changed since (report.md (size" in _one_line(info, f"--out {out}:")
    assert (out / "report.md").read_text() == "the user edited our report" and (out / "config.json").exists()
    (out / "config.json").unlink()
    (out / "config.json").mkdir()  # same name, another kind
    with pytest.raises(OutPathError, match="config.json \\(now a dir, recorded as a file\\)"):
        prepare_out_dir(out, "train", overwrite=True)


def test_a_killed_writer_leaves_pending_entries_that_overwrite_may_remove(tmp_path):
    """Claimed before writing: a kill mid-write (or between write and settle) still leaves it ours."""
    out = _our_run(tmp_path / "run")
    claim(out, "last.pt", "report.md", "images/0.jpg")  # what a killed command had begun to write
    (out / "report.md").write_text("half a new report, longer than before")
    (out / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")  # save_atomic's temp file
    (out / "images").mkdir()
    (out / "images" / "0.jpg").write_bytes(b"jpeg")
    (out / f".{RECORD_FILE}.abc.tmp").write_text("{")  # the record's own interrupted replacement
    assert check_out_dir(out, "train", resume=True) == []
    prepare_out_dir(out, "train", overwrite=True)
    assert [p.name for p in out.iterdir()] == [RECORD_FILE]


def test_a_temp_file_of_a_settled_entry_is_not_ours(tmp_path):
    out = _our_run(tmp_path / "run")
    (out / ".report.md.abc.tmp").write_text("?")
    with pytest.raises(OutPathError, match="did not write \\(.report.md.abc.tmp\\)"):
        prepare_out_dir(out, "train", overwrite=True)


def test_a_nested_output_is_checked_and_removed_by_its_own_record(tmp_path):
    study = prepare_out_dir(tmp_path / "study", "study")
    claim(study, "runs/seed0", kind="dir")
    _our_run(study / "runs" / "seed0")
    with writing(study, "study.json"):
        (study / "study.json").write_text("{}")
    (study / "runs" / "seed0" / "mine.txt").write_text("mine")
    with pytest.raises(OutPathError, match="did not write \\(runs/seed0/mine.txt\\)"):
        prepare_out_dir(study, "study", overwrite=True)
    (study / "runs" / "seed0" / "mine.txt").unlink()
    prepare_out_dir(study, "study", overwrite=True)
    assert [p.name for p in study.iterdir()] == [RECORD_FILE]


def test_names_must_stay_inside_the_folder(tmp_path):
    out = prepare_out_dir(tmp_path / "run", "train")
    for bad in ("../escape", "/abs", RECORD_FILE, "a/../../b", ""):
        with pytest.raises(ValueError):
            claim(out, bad)


def test_writing_into_an_unrecorded_folder_records_nothing(tmp_path):
    with writing(tmp_path, "x.txt"):
        (tmp_path / "x.txt").write_text("x")
    assert not (tmp_path / RECORD_FILE).exists()
    settle(tmp_path, "x.txt")


def test_remove_output_removes_only_a_recorded_folder(tmp_path, goodreads_sample):
    mine = make_user_folder(tmp_path / "art.failed", goodreads_sample)
    before = fingerprint(mine)
    with pytest.raises(OutPathError, match="no bookcover-fast command recorded"):
        remove_output(mine, "export")
    assert fingerprint(mine) == before
    ours = _our_run(tmp_path / "ours", "export")
    remove_output(ours, "export")
    assert not ours.exists()
    remove_output(tmp_path / "absent", "export")


def test_a_single_output_file_is_replaced_only_when_its_sibling_record_says_ours(tmp_path):
    photo = tmp_path / "2023-beach.png"
    photo.write_bytes(b"holiday")
    with pytest.raises(OutPathError, match="already exists.*--overwrite"):
        check_out_file(photo, "gan sample")
    with pytest.raises(OutPathError, match="no record says `gan sample` wrote it"):
        check_out_file(photo, "gan sample", overwrite=True)
    assert photo.read_bytes() == b"holiday"
    grid = prepare_out_file(tmp_path / "new" / "grid.png", "gan sample")
    grid.write_bytes(b"grid")
    settle_file(grid)
    assert json.loads(file_record(grid).read_text())["entries"] == {"grid.png": {"kind": "file", "size": 4}}
    assert prepare_out_file(grid, "gan sample", overwrite=True) == grid
    grid.write_bytes(b"a new grid")
    settle_file(grid)
    grid.write_bytes(b"edited by the user")
    with pytest.raises(OutPathError, match="changed since `gan sample` wrote it"):
        check_out_file(grid, "gan sample", overwrite=True)
    with pytest.raises(OutPathError, match="is a folder"):
        check_out_file(tmp_path, "gan sample", overwrite=True)
