"""Fused CORAL op vs the eager reference and torch.compile(reference) (pytest-benchmark).

Groups are "<mode> B=<B> K=<K> <device>", so each group lists the implementations side by side.
Peak memory per call is in extra_info["peak_bytes"]. Triton runs on CUDA only. Training step:
one full ResNet-34 step of the quick preset with each loss implementation, and the share of
the step the CORAL op takes. `python bench/report.py --json FILE` turns the JSON into ratios.

    pytest bench/test_bench_coral.py --benchmark-only --benchmark-json out.json
    BENCH_DEVICE=cuda ...   # GPU run;  BENCH_FULL=1 ...  # also the largest CPU cases
"""

from __future__ import annotations

import os

import pytest
import torch

from bench import coral_cases as cases

DEVICE = torch.device(os.environ.get("BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))
IMPLS = cases.impls_for(DEVICE)
FULL = os.environ.get("BENCH_FULL") == "1"


def _run(benchmark, impl: str, mode: str, batch: int, levels: int) -> None:
    if DEVICE.type == "cpu" and batch * (levels - 1) > cases.CPU_ELEMENT_LIMIT and not FULL:
        pytest.skip(f"B={batch} K={levels} on CPU runs only with BENCH_FULL=1")
    logit, bias, labels = cases.make_inputs(batch, levels, DEVICE)
    call = cases.make_call(impl, mode, logit, bias, labels)
    route = cases.checked_route(impl, call)  # warm up (and compile, for "compiled"); the route that ran
    cases.sync(DEVICE)
    benchmark.group = f"{mode} B={batch} K={levels} {DEVICE.type}"
    auto = cases.auto_route(DEVICE, batch)
    benchmark.extra_info.update(impl=impl, route=route, auto_route=auto, mode=mode, batch=batch, levels=levels,
                                device=DEVICE.type)  # fmt: skip
    print(f"{benchmark.group}: impl={impl} ran route {route}; impl=auto takes {auto}")
    # CPU peak memory comes from a TorchDispatchMode, which a compiled graph does not run under.
    skip_mem = impl == "compiled" and DEVICE.type == "cpu"
    benchmark.extra_info["peak_bytes"] = None if skip_mem else cases.peak_bytes(call, DEVICE)

    def timed() -> None:
        call()
        cases.sync(DEVICE)

    rounds = 20 if batch * levels <= 1_000_000 else 5
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("levels", cases.LEVELS)
@pytest.mark.parametrize("batch", cases.BATCHES)
@pytest.mark.parametrize("mode", cases.MODES)
def test_coral_op(benchmark, impl, mode, batch, levels):
    _run(benchmark, impl, mode, batch, levels)


@pytest.mark.parametrize("impl", IMPLS)
def test_training_step_quick_preset(benchmark, impl):
    """One optimiser step of the quick preset (ResNet-34, batch 64, 64 px crops)."""
    from bookcover.classifier.config import preset
    from bookcover.classifier.predict import build_model

    config = preset("quick", loss_impl=impl)
    torch.manual_seed(0)
    model = build_model(config).to(DEVICE).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    x = torch.randn(config.batch_size, 3, config.crop, config.crop, device=DEVICE).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.randint(0, config.num_levels, (config.batch_size,), device=DEVICE)

    import bookcover.coral as coral

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logit = model(x)
        coral.coral_loss(logit, model.coral_bias, labels, impl=impl).backward()
        optimizer.step()
        cases.sync(DEVICE)

    step()
    assert coral.last_route() == impl, f"impl={impl} ran route {coral.last_route()}"
    benchmark.group = f"training step quick preset {DEVICE.type}"
    benchmark.extra_info.update(impl=impl, batch=config.batch_size, device=DEVICE.type)
    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)
