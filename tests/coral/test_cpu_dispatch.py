"""The C++ op's CPU kernels are chosen at run time: a portable library, AVX2 only where the CPU has it.

A build on an AVX2 machine must still load and run on a CPU without AVX2 (a wheel, a venv or an
image moved elsewhere). We cannot borrow such a CPU here, so the tests check the two things that
make it true: the baseline copy (ATEN_CPU_CAPABILITY=default) gives the same results, and no code
outside the AVX2 copy of the kernels uses an AVX instruction (the library is disassembled).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bookcover.coral import cpp

pytestmark = pytest.mark.skipif(not cpp.available(), reason="bookcover._C was not built")

REPO = Path(__file__).resolve().parents[2]

# Loss, gradients and predictions of a fixed batch through the C++ op; printed as JSON.
PROBE = """
import json, sys, torch
import bookcover._C as C
g = torch.linspace(-9, 9, 1037, dtype=torch.float32)
b = torch.tensor([1.5, 0.5, -0.5, -1.5])
y = torch.arange(1037) % 5
w = torch.tensor([1.0, 0.8, 0.6, 0.9])
out = {"capability": C.cpu_capability()}
for name, weights in (("plain", None), ("weighted", w)):
    loss, dg, db, probas, rank = torch.ops.bookcover.coral_loss_fwd(g, b, y, weights, True, True)
    out[name] = [loss.tolist(), dg.tolist(), db.tolist(), probas.flatten().tolist(), rank.tolist()]
probas, rank = torch.ops.bookcover.coral_predict(g, b)
out["predict"] = [probas.flatten().tolist(), rank.tolist()]
json.dump(out, sys.stdout)
"""


def _host_has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


def _probe(capability: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if capability is not None:
        env["ATEN_CPU_CAPABILITY"] = capability
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_capability_follows_the_cpu():
    import bookcover._C as C

    expected = "avx2" if platform.machine() in ("x86_64", "AMD64") and _host_has_avx2_fma() else "default"
    if "ATEN_CPU_CAPABILITY" in os.environ:
        pytest.skip("ATEN_CPU_CAPABILITY is set for this process")
    assert C.cpu_capability() == expected


def test_baseline_kernels_match_the_chosen_ones():
    best, baseline = _probe(None), _probe("default")
    assert baseline["capability"] == "default"
    for name in ("plain", "weighted", "predict"):
        for got, want in zip(baseline[name], best[name], strict=True):
            torch.testing.assert_close(torch.tensor(got), torch.tensor(want), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("objdump") is None, reason="needs x86-64 objdump")
def test_only_the_avx2_kernels_use_avx():
    import bookcover._C as C

    listing = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", C.__file__], capture_output=True,
                             text=True, timeout=120, check=True).stdout
    func, with_avx = None, set()
    for line in listing.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            func = head.group(1)
            continue
        fields = line.split("\t")
        if func is None or len(fields) < 2 or not fields[1].strip():
            continue
        instr = fields[1].strip()
        # AVX: a ymm/zmm register, or a VEX/EVEX-encoded instruction (their mnemonics start with v).
        if re.search(r"%[yz]mm", instr) or re.match(r"v(?!err|erw)", instr):
            with_avx.add(func)
    # Code from our sources and the headers they include (CUDA's own runtime is not ours to check).
    ours = {f for f in with_avx if re.search(r"\b(bookcover|at|c10|std|torch)::", f)}
    outside = sorted(f for f in ours if "bookcover::cpu::AVX2::" not in f and "kernels_avx2" not in f)
    assert ours, "no AVX2 kernels found: was the AVX2 copy compiled?"
    assert not outside, f"AVX instructions outside the runtime-dispatched AVX2 kernels: {outside[:10]}"
