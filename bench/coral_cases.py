"""Shared pieces of the fused-CORAL benchmarks: inputs, the timed callables, peak memory.

Used by bench/test_bench_coral.py (pytest-benchmark) and bench/report.py (interleaved CPU
ratio table), so both time exactly the same work.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import bookcover.coral as coral
from bookcover.coral import dispatch

BATCHES = (256, 4096, 65_536, 1_048_576)
LEVELS = (5, 10, 100)
MODES = ("fwd", "fwd+bwd")
# On CPU the reference needs several B x (K-1) temporaries; above this many elements a case
# takes minutes on a small machine, so it runs only with BENCH_FULL=1.
CPU_ELEMENT_LIMIT = 12_000_000


def impls_for(device: torch.device) -> list[str]:
    """Implementations that really run on this device (an explicit impl never falls back: one
    that cannot run would raise). Triton on CUDA only: the interpreter is no benchmark."""
    names = ["reference", "compiled"]
    if dispatch.why_not("cpp", device.type, float64=False) is None:
        names.append("cpp")
    if device.type == "cuda" and dispatch.why_not("triton", device.type, float64=False) is None:
        names.append("triton")
    return names


def auto_route(device: torch.device, batch: int) -> str:
    """The route impl="auto" takes for an eager call of ``batch`` rows on ``device``."""
    return coral.resolve_route("auto", device, dispatch.eager_mode(device.type, batch))


def checked_route(impl: str, call: Callable[[], None]) -> str:
    """Run ``call`` once (a warm-up) and return the route that ran; it must be ``impl`` itself
    (for "auto": the table's choice), so a benchmark never times a different implementation."""
    call()
    route = coral.last_route()
    if impl != "auto" and route != impl:
        raise RuntimeError(f"benchmark of impl={impl!r} ran route {route!r}")
    return route


def make_inputs(batch: int, levels: int, device: torch.device, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logit = (torch.randn(batch, generator=gen) * 2).to(device).requires_grad_()
    bias = torch.linspace(1.0, -1.0, levels - 1).to(device).requires_grad_()
    labels = torch.randint(0, levels, (batch,), generator=gen).to(device)
    return logit, bias, labels


def make_call(impl: str, mode: str, logit, bias, labels) -> Callable[[], None]:
    """The timed unit: loss (no grad) for "fwd"; loss then backward for "fwd+bwd"."""
    if mode == "fwd":

        def call() -> None:
            with torch.no_grad():
                coral.coral_loss(logit, bias, labels, impl=impl)

    else:

        def call() -> None:
            logit.grad = bias.grad = None
            coral.coral_loss(logit, bias, labels, impl=impl).backward()

    return call


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of live tensors created by ATen/custom ops (their outputs), and the peak.

    CPU has no allocator statistics; this counts what the ops allocate (tensor outputs that own
    their storage), which is where the reference and the fused op differ: the reference's
    B x (K-1) intermediates and saved tensors versus the fused op's B + K-1 saved gradients.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t._base is None and not t.is_meta:
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, nbytes)
        return out


def peak_bytes(call: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated during one call, above what was allocated before it."""
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    with _LiveBytes() as mode:
        call()
    return mode.peak
