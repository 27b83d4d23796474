"""pytest-benchmark: one explanation, lime_image (defaults / batched) vs ours, tiny model and ResNet-34.

    pytest bench/test_bench_lime.py --benchmark-only        (ratio table: python -m bench.lime_speed)
"""

import pytest

from bench.lime_speed import CASES, make_model, run_lime, run_ours, sample_cover

SAMPLES = 1000


@pytest.mark.parametrize("kind,size,crop", [c[:3] for c in CASES], ids=[f"{c[0]}-{c[1]}px" for c in CASES])
@pytest.mark.parametrize("impl", ["lime-default-batch10", "lime-batch-all", "ours"])
def test_explain_one_cover(benchmark, kind, size, crop, impl):
    pytest.importorskip("lime")
    model, image = make_model(kind, size, crop), sample_cover(size)
    run_ours(model, image, 50)  # warm-up outside the timed rounds
    fn = {
        "lime-default-batch10": lambda: run_lime(model, image, SAMPLES, 10),
        "lime-batch-all": lambda: run_lime(model, image, SAMPLES, SAMPLES),
        "ours": lambda: run_ours(model, image, SAMPLES),
    }[impl]
    benchmark.group = f"lime-{kind}-{size}px-{SAMPLES}-samples"
    benchmark.pedantic(fn, rounds=1 if kind == "resnet34" else 3, iterations=1)
