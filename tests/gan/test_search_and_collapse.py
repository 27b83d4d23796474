"""Popularity search and FID/KID through a CORAL checkpoint; collapse warnings."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, GAN_KIND, save_atomic
from bookcover.classifier.config import preset
from bookcover.classifier.model import CoralResNet34
from bookcover.classifier.predict import load_classifier
from bookcover.cli import main
from bookcover.gan.collapse import CollapseMonitor
from bookcover.gan.sampling import load_generator
from bookcover.gan.search import level_histogram, score_images, search_popular


@pytest.fixture(scope="module")
def classifier_ckpt(tmp_path_factory):
    """An untrained CORAL checkpoint at 36 px: enough to exercise the feature and scoring path."""
    torch.manual_seed(0)
    model = CoralResNet34(num_levels=5)
    path = tmp_path_factory.mktemp("clf") / "best.pt"
    config = preset("quick", image_size=36, crop=32)
    save_atomic({"kind": CLASSIFIER_KIND, "config": config.to_dict(), "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def gan_ckpt(tmp_path_factory):
    """An untrained tiny GAN checkpoint (the search does not care how good G is)."""
    from bookcover.gan.config import gan_preset
    from bookcover.gan.model import build_gan

    torch.manual_seed(0)
    cfg = gan_preset("quick", ngf=8, ndf=8)
    g, d = build_gan(cfg.nz, cfg.ngf, cfg.ndf)
    path = tmp_path_factory.mktemp("gan") / "last.pt"
    save_atomic({"kind": GAN_KIND, "config": cfg.to_dict(), "generator": g.state_dict(), "epoch": 0}, path)
    return path


def test_level_histogram():
    assert level_histogram(np.array([0, 4, 4, 2]), 5) == [0.25, 0.0, 0.25, 0.0, 0.5]


def test_search_keeps_the_highest_scored_samples(gan_ckpt, classifier_ckpt, tmp_path):
    loaded, clf = load_generator(gan_ckpt), load_classifier(classifier_ckpt, "cpu")
    res = search_popular(loaded, clf, tmp_path, candidates=48, top=8, seed=3)
    for name in ("search_top.png", "search_random.png", "search.json", "search.md"):
        assert (tmp_path / name).is_file()
    assert sum(res["top_levels"]) == pytest.approx(1.0) and sum(res["random_levels"]) == pytest.approx(1.0)
    assert res["top_expected_mean"] >= res["random_expected_mean"]
    # the kept ones are the 8 best of the pool: rescoring the pool agrees
    from bookcover.gan.sampling import generate, make_noise

    z = make_noise(48, 100, "normal", torch.Generator().manual_seed(3))
    expected = score_images(clf, generate(loaded.g, z))["expected"]
    assert res["top_expected_mean"] == pytest.approx(float(np.sort(expected)[-8:].mean()), rel=1e-4)
    assert "top 8 of 48" in (tmp_path / "search.md").read_text()


def test_search_cli_rejects_a_gan_checkpoint_as_classifier(gan_ckpt, tmp_path):
    res = CliRunner().invoke(
        main,
        ["gan", "search", "--checkpoint", str(gan_ckpt), "--classifier", str(gan_ckpt), "--out", str(tmp_path / "s")],
    )
    assert res.exit_code != 0 and "expected 'bookcover-fast/coral-classifier'" in res.output


def test_evaluate_cli_with_classifier_reports_fid_and_kid(synth_covers, gan_ckpt, classifier_ckpt, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(
        main,
        [
            "gan",
            "evaluate",
            "--checkpoint",
            str(gan_ckpt),
            "--data",
            str(synth_covers),
            "--classifier",
            str(classifier_ckpt),
            "--n",
            "24",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    ev = json.loads((out / "evaluation.json").read_text())
    for key in ("generated", "real_vs_real", "noise"):
        assert np.isfinite(ev["fid_kid"][key]["fid"]) and ev["fid_kid"][key]["fid"] > -1e-6
    assert ev["fid_kid"]["real_vs_real"]["fid"] < ev["fid_kid"]["noise"]["fid"]
    assert "FID" in (out / "report.md").read_text()


def test_collapse_monitor_warns_after_patience_and_on_identical_samples():
    mon = CollapseMonitor(patience=3)
    assert mon.step(0.01, 0.5) == [] and mon.step(0.01, 0.5) == []
    warned = mon.step(0.01, 0.5)
    assert len(warned) == 1 and "D loss" in warned[0]
    assert mon.step(0.01, 0.5) == [], "once per epoch"
    mon.step(1.0, 0.5)
    assert mon.low_d_loss == 0
    assert mon.samples(torch.zeros(4, 3, 8, 8)) and not mon.samples(torch.rand(4, 3, 8, 8))
    # a conditional G that varies with the level but ignores z within it
    per_level = torch.cat([torch.full((3, 3, 8, 8), v) for v in (-0.5, 0.0, 0.5)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert not mon.samples(per_level)
    assert "within a level" in mon.samples(per_level, labels)[0]
