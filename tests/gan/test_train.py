"""The GAN loop: D learns, runs resume exactly, run directories, CLI commands and bad input."""

import json

import pytest
import torch
from click.testing import CliRunner

from bookcover.checkpoint import CLASSIFIER_KIND, GAN_KIND, load_checkpoint, save_atomic
from bookcover.cli import main
from bookcover.errors import BookcoverError, CheckpointError
from bookcover.gan.config import GanConfig, gan_preset
from bookcover.gan.data import load_gan_covers, train_crops
from bookcover.gan.model import build_gan
from bookcover.gan.sampling import load_generator
from bookcover.gan.train import d_step, train_gan
from bookcover.outputs import RECORD_FILE, prepare_out_dir
from tests.conftest import torch_threads


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


def tiny_gan(data, **overrides) -> GanConfig:
    """Narrow G and D (8 channels), 60 covers, batch 16: a few seconds per epoch on CPU."""
    base = dict(
        data=str(data), ngf=8, ndf=8, epochs=2, batch_size=16, max_covers=100, grid_samples=16, eval_samples=16, seed=4
    )
    base.update(overrides)
    return gan_preset("quick", **base)


@pytest.fixture(scope="module")
def tiny_gan_run(synth_covers, tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    result = train_gan(tiny_gan(synth_covers), out, quiet=True)
    return out, result


def test_top_three_levels_only(synth_covers):
    covers = load_gan_covers(tiny_gan(synth_covers), quiet=True)
    assert set(covers.levels.tolist()) == {2, 3, 4}
    assert covers.pixels.shape[1:] == (120, 80, 3), "short edge 80 for 2:3 covers"
    assert sorted(set(covers.classes.tolist())) == [0, 1, 2]
    x = train_crops(torch.from_numpy(covers.pixels[:4]), 64, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 64, 64) and x.min() >= -1 and x.max() <= 1


def test_a_few_steps_reduce_d_loss_on_a_fixed_batch(synth_covers):
    covers = load_gan_covers(tiny_gan(synth_covers), quiet=True)
    real = train_crops(torch.from_numpy(covers.pixels[:16]), 64, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    g, d = build_gan(ngf=8, ndf=8)
    with torch.no_grad():
        fake = g(torch.randn(16, 100, 1, 1))
    opt = torch.optim.Adam(d.parameters(), lr=5e-4, betas=(0.5, 0.999))
    losses = []
    for _ in range(6):
        loss, _, _ = d_step(d, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_run_directory_and_evaluation(tiny_gan_run):
    out, result = tiny_gan_run
    for name in (
        "config.json",
        "metrics.jsonl",
        "last.pt",
        "curves.png",
        "grids/epoch_001.png",
        "grids/epoch_002.png",
        "evaluation.json",
        "report.md",
        "samples.png",
        "nearest.png",
    ):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert {"loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2"} <= set(epochs[0])
    ckpt = load_checkpoint(out / "last.pt", GAN_KIND)
    for key in ("generator", "discriminator", "opt_g", "opt_d", "epoch", "fixed_noise", "rng"):
        assert key in ckpt
    assert ckpt["fixed_noise"].shape == (16, 100, 1, 1)
    ev = result["evaluation"]
    assert ev["swd"]["real_vs_real"]["mean"] < ev["swd"]["noise"]["mean"]
    report = (out / "report.md").read_text()
    assert "real half B" in report and "uniform noise" in report and "Copies flagged" in report


def test_resumed_run_matches_an_uninterrupted_one(synth_covers, tmp_path):
    cfg = tiny_gan(synth_covers, epochs=2, max_covers=60)
    train_gan(cfg, tmp_path / "full", quiet=True, evaluate=False)

    class Killed(Exception):
        pass

    def kill(epoch, step):
        if epoch == 1 and step == 0:  # mid-way through the second (last) epoch
            raise Killed

    with pytest.raises(Killed):
        train_gan(cfg, tmp_path / "resumed", quiet=True, evaluate=False, on_step=kill)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt", GAN_KIND)["epoch"] == 1
    with pytest.raises(BookcoverError, match="--resume"):
        train_gan(cfg, tmp_path / "resumed", quiet=True, evaluate=False)
    train_gan(cfg, tmp_path / "resumed", resume=True, quiet=True, evaluate=False)
    a = load_checkpoint(tmp_path / "full" / "last.pt", GAN_KIND)
    b = load_checkpoint(tmp_path / "resumed" / "last.pt", GAN_KIND)
    for part in ("generator", "discriminator"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    assert (tmp_path / "full" / "metrics.jsonl").read_text().count('"kind": "epoch"') == 2
    assert (tmp_path / "resumed" / "metrics.jsonl").read_text().count('"kind": "epoch"') == 2
    for run in ("full", "resumed"):  # both recorded whole: --overwrite may replace either (issue 18)
        prepare_out_dir(tmp_path / run, "gan train", overwrite=True)
        assert [p.name for p in (tmp_path / run).iterdir()] == [RECORD_FILE]


def test_uniform_noise_and_conditional_grid(synth_covers, tmp_path):
    out = tmp_path / "cond"
    train_gan(
        tiny_gan(synth_covers, epochs=1, conditional=True, noise="uniform", grid_samples=12),
        out,
        quiet=True,
        evaluate=False,
    )
    loaded = load_generator(out / "last.pt")
    assert loaded.config.num_classes == 3 and loaded.g.embed is not None
    assert loaded.checkpoint["fixed_labels"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert loaded.checkpoint["fixed_noise"].min() >= 0, "uniform [0, 1) noise"
    res = CliRunner().invoke(
        main, ["gan", "sample", "--checkpoint", str(out / "last.pt"), "--n", "9", "--out", str(tmp_path / "grid.png")]
    )
    assert res.exit_code == 0, res.output
    assert "3 per row" in res.output
    assert len(list((tmp_path / "grid_images").glob("*.png"))) == 9


def test_cli_sample_writes_grid_and_images(tiny_gan_run, tmp_path):
    out, _ = tiny_gan_run
    res = CliRunner().invoke(
        main, ["gan", "sample", "--checkpoint", str(out / "last.pt"), "--n", "32", "--out", str(tmp_path / "grid.png")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "grid.png").is_file()
    assert len(list((tmp_path / "grid_images").glob("*.png"))) == 32


def test_wrong_checkpoint_kind_is_a_one_line_error(tmp_path):
    save_atomic({"kind": CLASSIFIER_KIND, "model": {}}, tmp_path / "clf.pt")
    with pytest.raises(CheckpointError, match="expected 'bookcover-fast/dcgan'"):
        load_generator(tmp_path / "clf.pt")
    res = CliRunner().invoke(
        main, ["gan", "sample", "--checkpoint", str(tmp_path / "clf.pt"), "--out", str(tmp_path / "g.png")]
    )
    assert res.exit_code != 0
    assert "expected 'bookcover-fast/dcgan'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "g.png").exists()


def test_bf16_autocast_path_trains_with_finite_losses(synth_covers, tmp_path):
    """The CUDA path's AMP, exercised on the CPU (bf16 autocast): losses stay finite, G still works."""
    train_gan(tiny_gan(synth_covers, epochs=1, max_covers=60, amp="on"), tmp_path / "amp", quiet=True, evaluate=False)
    records = [json.loads(line) for line in (tmp_path / "amp" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in records)
    assert (tmp_path / "amp" / "grids" / "epoch_001.png").is_file()


def test_resume_extends_a_finished_run_and_says_so(tiny_gan_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_gan_run[0], run)
    (run / ".last.pt.q8w7e6.tmp").write_bytes(b"x" * 1000)  # what a SIGKILL mid-save leaves
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    for epochs, why in ((2, "already finished its 2 epochs; nothing to do"),
                        (1, "already has 2 epochs, more than --epochs 1; nothing to do")):
        assert why in train_gan(tiny_gan(tmp_path), run, resume=True, quiet=True, epochs=epochs)["nothing_to_do"]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before

    result = train_gan(tiny_gan(tmp_path), run, resume=True, epochs=3)
    assert result["resumed_after"] == 2 and result["extended_from"] == 2 and result["epochs"] == 3
    assert "training to epoch 3 (extended from 2)" in capsys.readouterr().err
    assert load_checkpoint(run / "last.pt", GAN_KIND)["epoch"] == 3
    assert json.loads((run / "evaluation.json").read_text())["epoch"] == 3 and (run / "grids/epoch_003.png").is_file()
    assert not list(run.glob(".*.tmp"))
    assert "nothing to do" in train_gan(tiny_gan(tmp_path), run, resume=True, quiet=True)["nothing_to_do"]


def test_overwrite_starts_a_gan_run_again_with_the_data_path_absolute(tiny_gan_run, synth_covers, tmp_path,
                                                                      monkeypatch):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_gan_run[0], run)
    monkeypatch.chdir(synth_covers.parent)
    cfg = tiny_gan(synth_covers.name, epochs=1, max_covers=60)  # "covers", relative to the cwd
    with pytest.raises(BookcoverError, match="--overwrite"):
        train_gan(cfg, run, quiet=True, evaluate=False)
    train_gan(cfg, run, quiet=True, evaluate=False, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [RECORD_FILE, "config.json", "curves.png", "grids", "last.pt",
                                                     "metrics.jsonl"]
    assert [p.name for p in (run / "grids").iterdir()] == ["epoch_001.png"]
    assert load_checkpoint(run / "last.pt", GAN_KIND)["config"]["data"] == str(synth_covers.resolve())
