"""Checkpoints: atomic writes, weights_only loading, kind checks."""

import pickle

import pytest
import torch

from bookcover.errors import CheckpointError
from bookcover.train.checkpoint import CLASSIFIER_KIND, GAN_KIND, load_checkpoint, save_atomic


def test_round_trip_and_no_temp_files_left(tmp_path):
    save_atomic({"kind": CLASSIFIER_KIND, "w": torch.ones(3)}, tmp_path / "a.pt")
    assert load_checkpoint(tmp_path / "a.pt", CLASSIFIER_KIND)["w"].sum() == 3
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_wrong_kind_is_refused(tmp_path):
    save_atomic({"kind": GAN_KIND}, tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(tmp_path / "g.pt", CLASSIFIER_KIND)


def test_plain_state_dict_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="no bookcover-fast kind"):
        load_checkpoint(tmp_path / "sd.pt", CLASSIFIER_KIND)


class Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_pickled_objects_are_not_executed(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"kind": CLASSIFIER_KIND, "x": Evil()}, fh)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_checkpoint(tmp_path / "evil.pt", CLASSIFIER_KIND)


def test_garbage_and_missing(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "junk.pt", CLASSIFIER_KIND)
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(tmp_path / "none.pt", CLASSIFIER_KIND)


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    save_atomic({"kind": CLASSIFIER_KIND, "v": 1}, tmp_path / "c.pt")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_atomic({"kind": CLASSIFIER_KIND, "v": 2}, tmp_path / "c.pt")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "c.pt", CLASSIFIER_KIND)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
