"""Offline register/spill audit of the Triton CORAL kernels for sm_90a (no GPU needed).

Each configuration in :func:`bookcover.coral.triton_configs.shipped` is compiled with
``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` into PTX, and the PTX is
assembled by Triton's bundled ptxas (``ptxas -v -arch=sm_90a``), whose report gives the
registers per thread and the spill bytes. Pointer arguments carry the 16-byte divisibility
that Triton's JIT infers for torch allocations, and B is assumed divisible by 16, as in a
real launch with such a batch. The PTX is also checked for libdevice calls (``__nv_*``): the
transcendentals must be the single-instruction approximations.

    python -m bench.triton_audit        # markdown table, as in bench/RESULTS.md

A developer tool (it runs ptxas), so it lives in bench/, not in the installed package;
tests/coral/test_triton_registers.py runs the same audit in CI. Must not run under
TRITON_INTERPRET=1 (the interpreter replaces the kernels).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds bookcover/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bookcover.coral.dispatch import TRITON_INTERPRET  # noqa: E402
from bookcover.coral.triton_configs import Launch, resident_programs, shipped  # noqa: E402


def ptxas_path() -> Path | None:
    """Triton's bundled ptxas (triton/backends/nvidia/bin/ptxas), or None."""
    import triton

    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    return path if path.is_file() and os.access(path, os.X_OK) else None


# libdevice functions whose sm_90 body is a single approximate instruction: exp2f is
# ex2.approx.ftz.f32 (tl.exp2 lowers through it).
FAST_LIBDEVICE = {"exp2f"}


@dataclass
class Report:
    launch: Launch
    registers: int
    spill_stores: int
    spill_loads: int
    stack_bytes: int
    shared_bytes: int
    libdevice_calls: tuple[str, ...]  # libdevice functions in the PTX (inlined), FAST_LIBDEVICE excepted
    divisions: tuple[str, ...]  # non-approximate fp32 divisions
    mufu: dict[str, int]

    @property
    def resident(self) -> int:
        return resident_programs(self.registers, self.launch.num_warps, self.shared_bytes)


def _signature(launch: Launch) -> tuple[object, dict[str, str], set[str]]:
    """(kernel, signature, names of 16-byte-aligned arguments) for one launch."""
    if launch.kernel == "loss":
        from bookcover.coral.triton_loss_kernel import coral_loss_fwd_kernel as fn

        g, lab = launch.dtypes["g"], launch.dtypes["labels"]
        sig = dict(g_ptr=f"*{g}", b_ptr="*fp32", w_ptr="*fp32", lab_ptr=f"*{lab}", loss_ptr="*fp32", dg_ptr="*fp32",
                   db_ptr="*fp32", part_ptr="*fp32", probas_ptr="*fp32", rank_ptr="*i64", B="i32", KM1="i32",
                   inv_b="fp32")  # fmt: skip
    elif launch.kernel == "predict":
        from bookcover.coral.triton_predict_kernel import coral_predict_kernel as fn

        sig = dict(g_ptr=f"*{launch.dtypes['g']}", b_ptr="*fp32", probas_ptr="*fp32", rank_ptr="*i64", B="i32", KM1="i32")
    elif launch.kernel == "grad_scale":
        from bookcover.coral.triton_backward_kernel import coral_grad_scale_kernel as fn

        sig = dict(dg_ptr="*fp32", db_ptr="*fp32", grad_ptr="*fp32", grad_g_ptr=f"*{launch.dtypes['grad_g']}",
                   grad_b_ptr="*fp32", B="i32", KM1="i32")  # fmt: skip
    elif launch.kernel == "reduce":
        from bookcover.coral.triton_reduce_kernel import coral_loss_reduce_kernel as fn

        sig = dict(part_ptr="*fp32", loss_ptr="*fp32", db_ptr="*fp32", P="i32", STRIDE="i32", NCOLS="i32", inv_b="fp32")
    else:
        raise ValueError(launch.kernel)
    aligned = {name for name, ty in sig.items() if ty.startswith("*")} | ({"B"} & set(sig))
    return fn, sig, aligned


def compile_ptx(launch: Launch) -> tuple[str, int]:
    """(PTX, shared memory bytes) of one launch, compiled for sm_90a."""
    kernel = compile_kernel(launch)
    return kernel.asm["ptx"], int(getattr(kernel.metadata, "shared", 0) or 0)


def compile_kernel(launch: Launch):
    """Triton's CompiledKernel of one launch for sm_90a, specialised as the JIT would."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn, sig, aligned = _signature(launch)
    constexprs = dict(launch.constexprs)
    if launch.km1 == 1 and "KM1" in sig:  # the JIT turns an int argument equal to 1 into a constant
        sig["KM1"] = "constexpr"
        constexprs["KM1"] = 1
    for name in constexprs:
        sig[name] = "constexpr"
    names = list(fn.arg_names)
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in aligned if sig.get(n) != "constexpr"}
    src = ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": launch.num_warps})


def assemble(ptx: str, ptxas: Path, sass: bool = False) -> tuple[str, str]:
    """(ptxas -v report, SASS listing if asked) of the PTX assembled for sm_90a."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        run = subprocess.run([str(ptxas), "-v", "-arch=sm_90a", str(src), "-o", str(out)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        listing = ""
        cuobjdump = ptxas.parent / "cuobjdump"
        if sass and cuobjdump.is_file():
            listing = subprocess.run([str(cuobjdump), "-sass", str(out)], capture_output=True, text=True).stdout
        return run.stdout + run.stderr, listing


def audit(launch: Launch, ptxas: Path, sass: bool = False) -> Report:
    """Compile one launch and read its ptxas report (and MUFU counts from SASS if asked)."""
    ptx, shared = compile_ptx(launch)
    text, sass_text = assemble(ptx, ptxas, sass)

    def num(pattern: str) -> int:
        m = re.search(pattern, text)
        return int(m.group(1)) if m else 0

    regs = re.search(r"Used (\d+) registers", text)
    if regs is None:
        raise RuntimeError(f"no register count in the ptxas output for {launch.label()}:\n{text}")
    return Report(
        launch=launch,
        registers=int(regs.group(1)),
        spill_stores=num(r"(\d+) bytes spill stores"),
        spill_loads=num(r"(\d+) bytes spill loads"),
        stack_bytes=num(r"(\d+) bytes stack frame"),
        shared_bytes=shared,
        libdevice_calls=tuple(sorted(set(re.findall(r"__nv_(\w+?)(?:\.exit)?\b", ptx)) - FAST_LIBDEVICE)),
        divisions=tuple(sorted(set(re.findall(r"\b(div\.(?:rn|full)\.f32)", ptx)))),
        mufu=dict(Counter(re.findall(r"MUFU\.(\w+)", sass_text))),
    )


def markdown(reports: list[Report]) -> str:
    lines = [
        "| kernel | config | registers | spill st/ld (B) | resident programs/SM | MUFU ops (static) | slow math |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in reports:
        mufu = " ".join(f"{k}x{v}" for k, v in sorted(r.mufu.items())) or "-"
        libd = ", ".join([f"__nv_{f}" for f in r.libdevice_calls] + list(r.divisions)) or "none"
        lines.append(f"| {r.launch.kernel} | {r.launch.label()} | {r.registers} | {r.spill_stores}/{r.spill_loads} | "
                     f"{r.resident} | {mufu} | {libd} |")  # fmt: skip
    return "\n".join(lines)


def audit_all(launches: list[Launch], ptxas: Path, sass: bool = False, workers: int | None = None) -> list[Report]:
    """Audit many launches; ptxas runs in parallel threads (it is a subprocess)."""
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda launch: audit(launch, ptxas, sass), launches))


def main() -> None:
    if TRITON_INTERPRET:
        sys.exit("triton_audit: unset TRITON_INTERPRET (the interpreter replaces the kernels)")
    ptxas = ptxas_path()
    if ptxas is None:
        sys.exit("triton_audit: Triton's bundled ptxas was not found")
    print(markdown(audit_all(shipped(), ptxas, sass=True)))


if __name__ == "__main__":
    main()
