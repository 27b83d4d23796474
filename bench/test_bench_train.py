"""pytest-benchmark: one training step, eager vs compiled vs compiled + channels_last, side by side.

    make bench   (or: pytest bench/test_bench_train.py --benchmark-only)
"""

import pytest
import torch

from bench.throughput import make_step, real_or_random_pixels, variants

BATCH, CROP = 16, 120


@pytest.fixture(scope="module")
def pixels():
    return real_or_random_pixels(256, 128, torch.device("cpu"))[0]


@pytest.mark.parametrize("variant", variants(torch.device("cpu")), ids=lambda v: v["name"].replace(" ", ""))
def test_train_step(benchmark, pixels, variant):
    step = make_step(variant, pixels, BATCH, CROP)
    step()  # compile outside the timed rounds
    benchmark.group = f"train-step-cpu-b{BATCH}-{CROP}px"
    benchmark.extra_info["images_per_step"] = BATCH
    benchmark.pedantic(step, rounds=3, warmup_rounds=1)
