"""Shared fixtures: an isolated cache folder, tiny synthetic covers, a tiny trained run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOODREADS_SAMPLE = REPO.parent / "shared" / "data" / "goodreads-sample"


@contextlib.contextmanager
def torch_threads(n: int):
    """Run with n torch threads, then restore: tiny models are faster on one thread of a busy
    CPU, and one thread fixes the floating-point summation order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep caches and synthetic defaults out of the user's ~/.cache during tests."""
    root = tmp_path_factory.mktemp("bookcover-cache")
    old = os.environ.get("BOOKCOVER_CACHE")
    os.environ["BOOKCOVER_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("BOOKCOVER_CACHE", None)
    else:
        os.environ["BOOKCOVER_CACHE"] = old


@pytest.fixture(scope="session")
def synth_covers(tmp_path_factory) -> Path:
    """200 synthetic covers (seed 3), shared by the session's tests."""
    from bookcover.data.synth import synthesise

    return synthesise(tmp_path_factory.mktemp("synth") / "covers", n=200, seed=3, quiet=True)


def tiny_config(data: Path, **overrides):
    """A classifier config that trains in seconds on CPU (32 px covers, 2 epochs)."""
    from bookcover.classifier.config import preset

    base = dict(data=str(data), image_size=36, crop=32, epochs=2, batch_size=32, eval_batch_size=64, max_covers=120, seed=5)
    base.update(overrides)
    return preset("quick", **base)


@pytest.fixture(scope="session")
def tiny_run(synth_covers, tmp_path_factory) -> Path:
    """A finished tiny classifier run directory (best.pt, last.pt, report...)."""
    from bookcover.classifier.train import train_classifier

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_classifier(tiny_config(synth_covers), out, quiet=True)
    return out


@pytest.fixture(scope="session")
def goodreads_sample() -> Path:
    if not (GOODREADS_SAMPLE / "book_data.csv").is_file():
        pytest.skip("../shared/data/goodreads-sample is not present")
    return GOODREADS_SAMPLE
