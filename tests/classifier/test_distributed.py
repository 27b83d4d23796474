"""DDP via torchrun on CPU (gloo, 2 processes) matches one process at the same global batch."""

import os
import subprocess
import sys

import torch

from bookcover.checkpoint import CLASSIFIER_KIND, load_checkpoint
from bookcover.classifier.train import train_classifier
from tests.conftest import REPO, tiny_config, torch_threads


def test_torchrun_two_processes_match_one_process(synth_covers, tmp_path):
    cfg = tiny_config(synth_covers, epochs=2)
    args = ["--preset", "quick", "--data", str(synth_covers), "--image-size", str(cfg.image_size), "--crop", str(cfg.crop),
            "--epochs", str(cfg.epochs), "--batch-size", str(cfg.batch_size), "--max-covers", str(cfg.max_covers),
            "--seed", str(cfg.seed), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "bookcover.cli", "train", "--out", str(tmp_path / "ddp"), *args]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test MAE" in done.stdout  # rank 0 reports once

    # One process, each global batch split into the same 2 micro-batches the ranks took, with
    # one thread like each rank, so that even the floating-point summation order is the same.
    cfg.micro_batches = 2
    with torch_threads(1):
        train_classifier(cfg, tmp_path / "single", quiet=True)

    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt", CLASSIFIER_KIND)
    single = load_checkpoint(tmp_path / "single" / "last.pt", CLASSIFIER_KIND)
    assert ddp["epoch"] == single["epoch"] == 2
    params = dict(torch.nn.Module.named_parameters(_model(cfg)))
    for name in params:
        torch.testing.assert_close(ddp["model"][name], single["model"][name], atol=1e-5, rtol=1e-5, msg=name)


def _model(cfg):
    from bookcover.classifier.predict import build_model

    return build_model(cfg)
