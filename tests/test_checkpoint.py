"""Checkpoints: atomic writes, weights_only loading, kind checks."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bookcover.checkpoint import CLASSIFIER_KIND, GAN_KIND, load_checkpoint, save_atomic
from bookcover.errors import CheckpointError


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
    with pytest.raises(CheckpointError, match="not a bookcover-fast checkpoint"):
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


# Checkpoints written before the layout move (issue 12) still load and give the same outputs.
# tests/fixtures/legacy_*.pt were written by the code at commit cadc8fd (its
# tests/fixtures/make_legacy_checkpoints.py): every weight is a per-tensor constant, so each file
# is a few kB, and legacy_expected.json holds what that code predicted from them.
FIXTURES = Path(__file__).parent / "fixtures"


def test_a_classifier_checkpoint_from_before_the_move_loads_and_predicts_the_same():
    from bookcover.classifier import load_classifier, predict_pixels
    from bookcover.data.batches import eval_batch

    expected = json.loads((FIXTURES / "legacy_expected.json").read_text())
    clf = load_classifier(FIXTURES / "legacy_classifier.pt", device="cpu")
    assert clf.config.preset == "quick" and clf.checkpoint["epoch"] == 3
    ramp = torch.arange(72 * 72 * 3, dtype=torch.int64).reshape(72, 72, 3).mul(7).remainder(256)
    pixels = torch.stack([ramp // 4, 255 - ramp // 4, ramp]).to(torch.uint8)
    pred = predict_pixels(clf.model, pixels, clf.config.crop)
    assert pred["rank"].tolist() == expected["classifier"]["rank"]
    np.testing.assert_allclose(pred["probas"], expected["classifier"]["probas"], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        logit = clf.model(eval_batch(pixels, clf.config.crop))
    np.testing.assert_allclose(logit.numpy(), expected["classifier_logit"], rtol=1e-5, atol=1e-5)


def test_a_gan_checkpoint_from_before_the_move_loads_and_generates_the_same():
    from bookcover.gan.sampling import generate, load_generator

    expected = json.loads((FIXTURES / "legacy_expected.json").read_text())["gan"]
    loaded = load_generator(FIXTURES / "legacy_gan.pt", "cpu")
    images = generate(loaded.g, loaded.checkpoint["fixed_noise"])
    assert float(images.mean()) == pytest.approx(expected["mean"], abs=1e-5)
    assert float(images.std()) == pytest.approx(expected["std"], abs=1e-5)
    np.testing.assert_allclose(images[0, :, 0, :4].flatten().numpy(), expected["first"], atol=1e-5)


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    from bookcover.checkpoint import remove_stale_temporaries

    save_atomic({"kind": CLASSIFIER_KIND}, tmp_path / "last.pt")
    (tmp_path / ".last.pt.k2j3h4.tmp").write_bytes(b"half a checkpoint")  # what SIGKILL leaves
    (tmp_path / ".best.pt.x9.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_text("not ours")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".best.pt.x9.tmp", ".last.pt.k2j3h4.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "notes.tmp"]


def test_checkpoints_follow_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        save_atomic({"kind": CLASSIFIER_KIND}, tmp_path / "c.pt")
        assert stat.S_IMODE(os.stat(tmp_path / "c.pt").st_mode) == 0o644  # mkstemp alone gives 0600
    finally:
        os.umask(old)
