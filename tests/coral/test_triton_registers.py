"""Every shipped Triton CORAL kernel configuration, compiled for sm_90a on the CPU: no spills,
at most 128 registers per thread, no full-precision libdevice math, and each loss-table entry
still fits the resident programs per SM its grid assumes (issue 10).

Runs in the normal pytest process: under TRITON_INTERPRET=1 the interpreter replaces the
kernels, so there is nothing to compile. The configurations come from
bookcover.coral.triton_configs.shipped(); the figures are in bench/RESULTS.md
(`python -m bench.triton_audit`).
"""

from __future__ import annotations

import importlib.util

import pytest

from bookcover.coral.dispatch import TRITON_INTERPRET

if TRITON_INTERPRET:
    pytest.skip("compiles real kernels: run without TRITON_INTERPRET=1", allow_module_level=True)
if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

from bench import triton_audit  # noqa: E402
from bookcover.coral import triton_configs  # noqa: E402

MAX_REGISTERS = 128


@pytest.fixture(scope="module")
def reports() -> dict[str, triton_audit.Report]:
    ptxas = triton_audit.ptxas_path()
    if ptxas is None:
        pytest.skip("Triton's bundled ptxas (triton/backends/nvidia/bin/ptxas) was not found")
    launches = triton_configs.shipped()
    return {r.launch.label(): r for r in triton_audit.audit_all(launches, ptxas)}


def test_every_launcher_configuration_is_audited():
    kernels = {launch.kernel for launch in triton_configs.shipped()}
    assert kernels == {"loss", "predict", "grad_scale", "reduce"}
    # Every table entry appears, with and without predictions, with and without gradients.
    labels = {launch.label() for launch in triton_configs.shipped()}
    for table in (triton_configs.LOSS_TABLE, triton_configs.LOSS_TABLE_PRED):
        for _, cfg in table:
            assert any(f"BLOCK_B={cfg.block_b}," in x and f"warps={cfg.num_warps}" in x for x in labels)


def test_no_spills_and_at_most_128_registers(reports):
    bad = [
        f"{name}: {r.registers} registers, {r.spill_stores}/{r.spill_loads} bytes spilled"
        for name, r in reports.items()
        if r.spill_stores or r.spill_loads or r.registers > MAX_REGISTERS
    ]
    assert not bad, "\n".join(bad)


def test_transcendentals_are_single_instruction_approximations(reports):
    slow = [f"{name}: {r.libdevice_calls} {r.divisions}" for name, r in reports.items()
            if r.libdevice_calls or r.divisions]  # fmt: skip
    assert not slow, "\n".join(slow)


def test_loss_tables_resident_programs_match_the_register_counts(reports):
    """loss_grid() launches SMs x progs_per_sm programs: that must be one wave, so every
    variant of an entry must let at least progs_per_sm programs reside on an SM."""
    short = []
    for r in reports.values():
        if r.launch.kernel != "loss":
            continue
        c = r.launch.constexprs
        table = triton_configs.LOSS_TABLE_PRED if c["RETURN_PRED"] else triton_configs.LOSS_TABLE
        entries = [cfg for _, cfg in table] + ([] if c["RETURN_PRED"] else [triton_configs.LOSS_NARROW])
        cfg = next(cfg for cfg in entries if cfg.block_b == c["BLOCK_B"] and cfg.num_warps == r.launch.num_warps)
        if r.resident < cfg.progs_per_sm:
            short.append(f"{r.launch.label()}: {r.registers} registers -> {r.resident} programs/SM < {cfg.progs_per_sm}")
    assert not short, "\n".join(short)
