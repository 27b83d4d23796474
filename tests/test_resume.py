"""Start-or-resume rules of a training run, and the data paths a checkpoint recorded."""

import pytest

from bookcover.errors import UsageError
from bookcover.outputs import OutPathError, claim, prepare_out_dir, settle
from bookcover.resume import check_start_or_resume, locate_recorded_data


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


def test_resume_needs_last_pt_in_a_folder_recorded_by_the_same_command(tmp_path):
    run = prepare_out_dir(tmp_path / "run", "train")
    claim(run, "last.pt")
    (run / "last.pt").write_bytes(b"ckpt")
    settle(run, "last.pt")
    assert check_start_or_resume(run, True, False, "train") == run / "last.pt"
    with pytest.raises(OutPathError, match="output of `train`, not of `gan train`"):
        check_start_or_resume(run, True, False, "gan train")
    with pytest.raises(UsageError, match="already holds a run.*--resume"):
        check_start_or_resume(run, False, False, "train")
    with pytest.raises(UsageError, match="pass only one"):
        check_start_or_resume(run, True, True, "train")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "last.pt").write_bytes(b"not ours")
    with pytest.raises(OutPathError, match="no bookcover-fast command recorded"):
        check_start_or_resume(mine, True, False, "train")
    with pytest.raises(UsageError, match="holds no last.pt"):
        check_start_or_resume(tmp_path / "new", True, False, "train")
