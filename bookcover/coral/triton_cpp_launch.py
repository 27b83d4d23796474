"""The Triton loss kernel launched from C++ (csrc/triton_launch.cpp), for the eager door.

Why: at B=256 the fused loss is host-bound, and Triton's Python launcher plus a Python
``autograd.Function`` cost more host time than the whole C++ op (H200: forward+backward 350 vs
200 µs, bench/RESULTS.md). Here the kernel that Triton compiled and loaded is handed to the
extension once per input signature; later calls are one dispatcher call and one
``cuLaunchKernel`` under the C++ op's own autograd node (same backward as the C++ op).

How a signature is taken over (:func:`slot_for`):
1. its first call runs through Triton's launcher as before (the caller's result never depends
   on what follows), which compiles the kernel and returns the ``CompiledKernel``;
2. :func:`launch_params` derives the kernel's parameter list from the compiled signature and
   the PTX entry (Triton drops integer arguments equal to 1 and appends scratch pointers);
3. the extension registers the CUfunction, and the C++ launch is run once on the same inputs
   and compared bitwise with Triton's launch of the same kernel;
4. only if all of that holds does the signature use the C++ launch; otherwise it keeps
   Triton's launcher and says why once.

Only single-program launches (grid 1, B up to one tile) are taken over: larger batches are not
host-bound. Not under CUDA graph capture (step 3 reads results back) and not with the
interpreter (no compiled kernel); the custom ops of the compile door are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from bookcover.coral import cpp

# Parameter codes, as in csrc/triton_launch.cpp (enum Param): pointers in the kernel's order,
# then B, KM1, inv_b, and a null pointer for each trailing scratch parameter.
POINTERS = ("g_ptr", "b_ptr", "w_ptr", "lab_ptr", "loss_ptr", "dg_ptr", "db_ptr", "part_ptr", "probas_ptr", "rank_ptr")
SCALARS = {"B": (10, "i32", "u32"), "KM1": (11, "i32", "u32"), "inv_b": (12, "fp32", "f32")}
NULL_PTR = 13
MAX_PARAMS = 24  # kMaxParams in the C++ file

# Signature key -> slot in the extension's table, or -1 (this signature keeps Triton's launcher).
_SLOTS: dict[tuple, int] = {}
_KEEP: list[object] = []  # the registered CompiledKernels: their CUfunction must stay loaded


def available() -> bool:
    """The extension was built with CUDA and has the launcher op."""
    return cpp.available() and torch._C._dispatch_has_kernel_for_dispatch_key(
        "bookcover::coral_loss_fwd_triton", "CUDA"
    )


def ptx_param_types(ptx: str, name: str) -> list[str]:
    """PTX types (u64, u32, f32, ...) of the parameters of entry `name`, in order."""
    m = re.search(r"\.entry\s+" + re.escape(name) + r"\s*\((.*?)\)", ptx, re.S)
    if m is None:
        raise ValueError(f"no .entry {name} in the PTX")
    return re.findall(r"\.param\s+\.(\w+)", m.group(1))


def launch_params(signature: dict[str, str], ptx: str, name: str) -> list[int] | None:
    """Parameter codes for the C++ launcher, or None when the compiled kernel's parameters are
    not the ones this launcher knows how to pass (then Triton's launcher stays)."""
    codes: list[int] = []
    expected: list[str] = []
    for arg, ty in signature.items():
        if ty == "constexpr":  # constexpr flags, and integers Triton specialised to a constant
            continue
        if arg in POINTERS and isinstance(ty, str) and ty.startswith("*"):
            codes.append(POINTERS.index(arg))
            expected.append("u64")
        elif arg in SCALARS and ty == SCALARS[arg][1]:
            codes.append(SCALARS[arg][0])
            expected.append(SCALARS[arg][2])
        else:
            return None
    types = ptx_param_types(ptx, name)
    extra = types[len(codes) :]
    if types[: len(codes)] != expected or any(t != "u64" for t in extra) or len(types) > MAX_PARAMS:
        return None
    return codes + [NULL_PTR] * len(extra)


def unsupported_metadata(metadata) -> str | None:
    """Why the C++ launcher cannot launch a kernel with this metadata (None: it can). It passes
    null scratch pointers, one CTA per program and no launch attributes."""
    if getattr(metadata, "global_scratch_size", 0) or getattr(metadata, "profile_scratch_size", 0):
        return "the kernel needs scratch memory"
    if getattr(metadata, "num_ctas", 1) != 1:
        return "the kernel uses thread-block clusters"
    if getattr(metadata, "launch_cooperative_grid", False) or getattr(metadata, "launch_pdl", False):
        return "the kernel needs launch attributes"
    return None


def signature_key(logit, bias, labels, weights, compute_grad: bool) -> tuple:
    return (
        logit.get_device(),
        logit.dtype,
        bias.dtype,
        None if weights is None else weights.dtype,
        labels.dtype,
        logit.numel(),
        bias.numel(),
        labels.numel(),
        compute_grad,
    )


def register(compiled, grid: int, logit, bias, labels, weights, compute_grad: bool) -> tuple[int, str | None]:
    """(slot, None) once the extension holds the kernel Triton just launched; (-1, why) if it
    cannot take it over."""
    if grid != 1:
        return -1, None  # several programs: not host-bound, nothing to gain
    why = unsupported_metadata(compiled.metadata)
    if why is not None:
        return -1, why
    params = launch_params(compiled.src.signature, compiled.asm["ptx"], compiled.metadata.name)
    if params is None:
        return -1, "its parameters are not the ones the C++ launcher passes"
    slot = torch.ops.bookcover.triton_register_loss(
        int(compiled.function), int(compiled.metadata.num_warps), int(compiled.metadata.shared), params,
        logit.dtype, bias.dtype, None if weights is None else weights.dtype, labels.dtype,
        logit.numel(), bias.numel(), compute_grad, logit.device.index,
    )  # fmt: skip
    if slot < 0:
        return -1, "the extension's kernel table is full"
    _KEEP.append(compiled)
    return int(slot), None


def launch(logit, bias, labels, weights, compute_grad: bool, slot: int):
    """(loss, dg, db, probas, rank) from the C++ launch of the kernel in `slot` (C++ autograd)."""
    return torch.ops.bookcover.coral_loss_fwd_triton.default(logit, bias, labels, weights, compute_grad, slot)


def same_results(cpp_out, triton_out) -> bool:
    """The two launches of one kernel on the same inputs agree bitwise (NaN where NaN)."""

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        nan = a.isnan()
        return a.shape == b.shape and torch.equal(nan, b.isnan()) and torch.equal(a[~nan], b[~nan])

    return all(same(a, b) for a, b in zip(cpp_out, triton_out, strict=True))


def slot_for(logit, bias, labels, weights, compute_grad: bool, triton_launch: Callable[[], tuple]) -> int:
    """The slot of this input signature, taking it over on its first call (steps 1-4 of the
    module docstring); -1: keep Triton's launcher. `triton_launch(launched=[])` launches the
    kernel through Triton, returns its outputs and appends (CompiledKernel, grid) to `launched`."""
    key = signature_key(logit, bias, labels, weights, compute_grad)
    slot = _SLOTS.get(key)
    if slot is not None:
        return slot
    if not available():
        _SLOTS[key] = -1
        return -1
    if torch.cuda.is_current_stream_capturing():
        return -1  # decide on an uncaptured call (the check reads results back)
    with torch.no_grad():
        launched: list = []
        expected = triton_launch(launched=launched)
        compiled, grid = launched[0]
        slot, why = register(compiled, grid, logit, bias, labels, weights, compute_grad)
        if slot >= 0:
            try:
                got = launch(logit, bias, labels, weights, compute_grad, slot)
            except RuntimeError as err:
                slot, why = -1, str(err).splitlines()[0]
            else:
                if not same_results(got[:3], expected[:3]):
                    slot, why = -1, "its first launch from C++ differed from Triton's launch"
    if why is not None:
        from bookcover.coral.ops import _notice

        _notice(f"impl='triton': Triton's own launcher is used for this input, not the C++ launch ({why})")
    _SLOTS[key] = slot
    return slot
