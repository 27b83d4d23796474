"""The one dispatch table of the CORAL loss and prediction: (device, impl, mode) -> route.

Routes are the implementations: "reference" (the eager oracle), "compiled" (torch.compile of
the oracle), "cpp" (the fused csrc/ op) and "triton" (the fused Triton kernels). The mode of a
call is read from torch, never from a setting:

* ``compile``: inside a ``torch.compile`` trace (``torch.compiler.is_compiling()``);
* ``capture``: a CUDA graph is being captured (``torch.cuda.is_current_stream_capturing()``);
* ``eager-large``: eager, CUDA, at least :data:`EAGER_CUDA_CROSSOVER` rows;
* ``eager``: any other eager call.

``impl="auto"`` takes the first route of its row that can run here (:data:`AUTO`). Eager CUDA
calls at small batches are host-bound, and the C++ op's dispatcher call and C++ autograd cost
less host time than Triton's Python launcher (H200, B=256, fwd+bwd: C++ 201-205 µs, Triton
350-398 µs; bench/RESULTS.md), so they go to the C++ op; Triton serves torch.compile, CUDA
graph capture (no host cost per replay) and large batches, where its kernels move bytes faster.
An explicit impl runs exactly that implementation or raises :class:`CoralImplError` (one line);
it never falls back. ``auto`` on a CPU without the C++ build runs the reference and says so
once. :func:`last_route` tells which route the last eager call of this thread took.

This module is also the one place that reads ``TRITON_INTERPRET`` (:data:`TRITON_INTERPRET`).
"""

from __future__ import annotations

import importlib.util
import os
import threading

import torch

from bookcover.coral import cpp
from bookcover.coral.notice import notice
from bookcover.errors import UsageError

IMPLS = ("auto", "reference", "compiled", "triton", "cpp")
ROUTES = ("reference", "compiled", "cpp", "triton")
EAGER, EAGER_LARGE, COMPILE, CAPTURE = "eager", "eager-large", "compile", "capture"
MODES = (EAGER, EAGER_LARGE, COMPILE, CAPTURE)

# Triton runs CPU tensors only in its interpreter, which must be chosen before triton is
# imported: read once, here (triton_ops takes it from this module).
TRITON_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

# Rows from which an eager CUDA call goes to Triton instead of the C++ op. From the H200 tables
# in bench/RESULTS.md: at B=256 the C++ op wins (above); at 16M rows (2**24) Triton's kernels
# are the faster ones (forward kernel 77 % of HBM bandwidth against the C++ op's 45 %). No
# batch in between was measured on both, so the C++ op, measured ahead at the small end and
# ~0.37 ms fwd+bwd at 16M, keeps every batch below 16M; bench/gpu_kernels.py's crossover
# sweep measures the sizes in between on the next GPU run.
EAGER_CUDA_CROSSOVER = 1 << 24

# impl="auto": the routes to try, in order, per (device type, mode). Other devices: reference.
AUTO: dict[tuple[str, str], tuple[str, ...]] = {
    ("cpu", EAGER): ("cpp", "reference"),
    ("cpu", EAGER_LARGE): ("cpp", "reference"),
    ("cpu", COMPILE): ("cpp", "reference"),
    ("cpu", CAPTURE): ("cpp", "reference"),
    ("cuda", EAGER): ("cpp", "triton", "reference"),
    ("cuda", EAGER_LARGE): ("triton", "cpp", "reference"),
    ("cuda", COMPILE): ("triton", "cpp", "reference"),
    ("cuda", CAPTURE): ("triton", "cpp", "reference"),
}


class CoralImplError(UsageError, ValueError):
    """A CORAL implementation that is unknown, or that was asked for explicitly and cannot run here."""


def routes_to_try(impl: str, device_type: str, mode: str) -> tuple[str, ...]:
    """The table row: the routes ``impl`` may take on ``device_type`` in ``mode``, in order."""
    if impl not in IMPLS:
        raise CoralImplError(f"unknown CORAL implementation {impl!r}; choose from {', '.join(IMPLS)}")
    if mode not in MODES:
        raise ValueError(f"unknown dispatch mode {mode!r}; choose from {', '.join(MODES)}")
    if impl != "auto":
        return (impl,)
    return AUTO.get((device_type, mode), ("reference",))


def choose(impl: str, device_type: str, mode: str, runnable: dict[str, str | None]) -> str:
    """The route, as a pure table lookup: ``runnable`` maps each route to None when it can run
    here, or to the reason it cannot. Raises CoralImplError for an explicit impl that cannot run."""
    row = routes_to_try(impl, device_type, mode)
    for route in row:
        if runnable.get(route) is None:
            return route
    raise CoralImplError(f"impl={impl!r} cannot run here: {runnable[row[0]]}")


_HAS_TRITON: bool | None = None


def why_not(route: str, device_type: str, float64: bool) -> str | None:
    """None when ``route`` can run for tensors on ``device_type``; else the one-line reason."""
    global _HAS_TRITON
    if route in ("reference", "compiled"):
        return None
    if route == "cpp":
        if not cpp.available():
            return "the C++ CORAL extension (bookcover._C) is not built (pip install --no-build-isolation -e .)"
        if device_type == "cpu":
            return None
        if device_type == "cuda" and torch._C._dispatch_has_kernel_for_dispatch_key("bookcover::coral_loss_fwd", "CUDA"):
            return None
        return f"the C++ CORAL extension (bookcover._C) has no {device_type} kernel (built without CUDA?)"
    if _HAS_TRITON is None:
        _HAS_TRITON = importlib.util.find_spec("triton") is not None
    if not _HAS_TRITON:
        return "triton is not installed"
    if device_type not in ("cuda", "cpu") or (device_type == "cpu" and not TRITON_INTERPRET):
        return "triton needs CUDA tensors (or TRITON_INTERPRET=1, set before triton is imported, for CPU tensors)"
    if float64:
        return "triton computes in fp32; use impl='cpp' or 'reference' for float64"
    return None


def eager_mode(device_type: str, batch: int) -> str:
    """The mode of an eager call of ``batch`` rows: only CUDA calls are split at the crossover."""
    return EAGER_LARGE if device_type == "cuda" and batch >= EAGER_CUDA_CROSSOVER else EAGER


def mode_of(t: torch.Tensor, device_type: str | None = None) -> str:
    """The dispatch mode of a call whose main input is ``t`` (see the module docstring)."""
    if torch.compiler.is_compiling():
        return COMPILE
    if (device_type or t.device.type) == "cuda":
        if torch.cuda.is_current_stream_capturing():
            return CAPTURE
        if t.numel() >= EAGER_CUDA_CROSSOVER:
            return EAGER_LARGE
    return EAGER


_CACHE: dict[tuple[str, str, str, bool], str] = {}


def resolve_route(impl: str, device: torch.device | str, mode: str = EAGER, float64: bool = False) -> str:
    """The route ``impl`` takes on ``device`` in ``mode`` (raises CoralImplError where an explicit
    impl cannot run). Cached: at B=256 the op takes microseconds, so a call must not redo the checks.

    A caller that captures a CUDA graph warms up with the route the capture takes:
    ``resolve_route(impl, device, "capture")`` (the training step does).
    """
    device_type = torch.device(device).type
    key = (impl, device_type, mode, float64)
    route = _CACHE.get(key)
    if route is None:
        row = routes_to_try(impl, device_type, mode)
        route = choose(impl, device_type, mode, {r: why_not(r, device_type, float64) for r in row})
        if impl == "auto" and route == "reference" and row[0] != "reference":
            notice(f"{why_not(row[0], device_type, float64)}; impl='auto' uses the reference implementation")
        _CACHE[key] = route
    return route


_LAST = threading.local()


def route_of_call(impl: str, t: torch.Tensor) -> str:
    """The route of one call whose main input is ``t``; recorded for :func:`last_route` (eager
    calls). Reads the tensor's device once: at B=256 on CPU a microsecond here is a few % of the op."""
    device_type = t.device.type
    mode = mode_of(t, device_type)
    float64 = t.dtype is torch.float64
    route = _CACHE.get((impl, device_type, mode, float64))
    if route is None:
        route = resolve_route(impl, device_type, mode, float64)
    if mode != COMPILE:
        _LAST.route = route
    return route


def last_route() -> str | None:
    """The route the last eager ``coral_loss``/``coral_predict`` call of this thread took
    (calls inside a torch.compile trace are not recorded); None before the first."""
    return getattr(_LAST, "route", None)
