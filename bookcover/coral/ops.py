"""Dispatch of the CORAL loss and prediction to one of several implementations.

``impl`` names: "reference" (the eager oracle), "compiled" (torch.compile of the oracle),
"triton" (the fused Triton kernels), "cpp" (the fused csrc/ op, CPU and CUDA) and "auto":
Triton on CUDA, the C++ op on CPU when it was built, the reference otherwise. When a requested
implementation cannot run here, the call falls back (C++ op, else reference) and prints a
one-line notice once; it never crashes for a missing build.

Triton is imported only when a Triton implementation is actually used, so importing
bookcover.coral never imports triton (TRITON_INTERPRET must be set before that import).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable

import torch

from bookcover.coral import cpp, reference
from bookcover.errors import InvalidLabelsError

IMPLS = ("auto", "reference", "compiled", "triton", "cpp")

_NOTICES: set[str] = set()
_COMPILED: dict[str, Callable] = {}


def _notice(message: str) -> None:
    """Print a one-line notice to stderr, once per process and message."""
    if message not in _NOTICES:
        _NOTICES.add(message)
        print(f"bookcover: {message}", file=sys.stderr)


def _triton_usable(device: torch.device) -> bool:
    if importlib.util.find_spec("triton") is None:
        return False
    return device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def _cpp_usable(device: torch.device) -> bool:
    if not cpp.available():
        return False
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch._C._dispatch_has_kernel_for_dispatch_key("bookcover::coral_loss_fwd", "CUDA")
    return False


_RESOLVED: dict[tuple[str, str], str] = {}


def resolve_impl(impl: str, device: torch.device) -> str:
    """The implementation that will actually run for ``impl`` on ``device`` (with any fallback).

    Cached per (impl, device type): at B=256 the op itself takes microseconds, so the dispatch
    must not redo these checks on every call.
    """
    key = (impl, device.type)
    name = _RESOLVED.get(key)
    if name is None:
        name = _RESOLVED[key] = _resolve(impl, device)
    return name


def _resolve(impl: str, device: torch.device) -> str:
    if impl not in IMPLS:
        raise ValueError(f"unknown CORAL implementation {impl!r}; choose from {', '.join(IMPLS)}")
    if impl in ("reference", "compiled"):
        return impl
    if impl == "auto":
        if device.type == "cuda" and _triton_usable(device):
            return "triton"
        if _cpp_usable(device):
            return "cpp"
        if device.type == "cpu":
            _notice("the C++ CORAL extension (bookcover._C) is not built; using the reference implementation")
        return "reference"
    if impl == "triton" and _triton_usable(device):
        return "triton"
    if impl == "cpp" and _cpp_usable(device):
        return "cpp"
    fallback = "cpp" if _cpp_usable(device) else "reference"
    why = (
        "triton is unavailable for these tensors (needs CUDA, or TRITON_INTERPRET=1 on CPU)"
        if impl == "triton"
        else f"the C++ CORAL extension (bookcover._C) has no {device.type} kernel here"
    )
    _notice(f"impl={impl!r}: {why}; using {fallback!r}")
    return fallback


def _compiled(name: str) -> Callable:
    """torch.compile of the reference function. dynamic=True: batch sizes vary (the last batch
    of an epoch, LIME's perturbation counts), and one graph serves them all."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(getattr(reference, name), dynamic=True)
    return _COMPILED[name]


def _check_label_dtype(labels: torch.Tensor, num_levels: int) -> None:
    """The cheap part of label validation (no data read): dtype and number of levels."""
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise InvalidLabelsError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if num_levels < 2:
        raise InvalidLabelsError(f"CORAL needs at least 2 levels, got {num_levels}")


def _check_label_range(labels: torch.Tensor, num_levels: int) -> None:
    """Range check with a single host sync (aminmax), for the GPU kernels in eager mode."""
    if labels.numel() == 0 or torch.compiler.is_compiling():
        return  # compiled: out-of-range labels make the kernel's loss NaN instead
    lo, hi = torch.stack(torch.aminmax(labels.reshape(-1))).tolist()
    if lo < 0 or hi > num_levels - 1:
        raise InvalidLabelsError(f"labels must lie in 0..{num_levels - 1}; got values from {lo} to {hi}")


def _wants_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _cpp_loss_fwd(*args):
    """The C++ op, with its label-range error turned into InvalidLabelsError (one line)."""
    try:
        return torch.ops.bookcover.coral_loss_fwd.default(*args)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "labels must lie" in first:
            raise InvalidLabelsError(first.removeprefix("coral: ")) from None
        raise


def coral_loss(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    task_weights: torch.Tensor | None = None,
    *,
    impl: str = "auto",
    return_predictions: bool = False,
):
    """CORAL loss (sum over tasks, mean over batch), by the implementation named ``impl``.

    With ``return_predictions=True`` returns ``(loss, probas, rank)`` from the same pass.
    """
    name = resolve_impl(impl, logit.device)
    if name in ("reference", "compiled"):
        fn = reference.coral_loss if name == "reference" else _compiled("coral_loss")
        loss = fn(logit, bias, labels, task_weights)
        if not return_predictions:
            return loss
        probas, rank = reference.coral_predict(logit.detach(), bias.detach())
        return loss, probas, rank
    num_levels = bias.numel() + 1
    _check_label_dtype(labels, num_levels)
    args = (logit, bias, labels, task_weights, _wants_grad(logit, bias), return_predictions)
    if name == "cpp":
        if logit.device.type != "cpu":
            _check_label_range(labels, num_levels)  # the CUDA kernel makes bad rows NaN, no error
        out = _cpp_loss_fwd(*args)
    else:
        _check_label_range(labels, num_levels)
        from bookcover.coral import triton_ops

        out = triton_ops.coral_loss_fwd(*args)
    return (out[0], out[3], out[4]) if return_predictions else out[0]


def coral_predict(logit: torch.Tensor, bias: torch.Tensor, *, impl: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """(probas (B, K-1) = P(level > k), rank (B,) int64), by the implementation named ``impl``.

    While exporting to ONNX (or tracing), ``auto`` gives the reference: plain ONNX operators
    that any runtime can execute, instead of a custom op only this package registers.
    """
    exporting = torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
    name = "reference" if impl == "auto" and exporting else resolve_impl(impl, logit.device)
    if name == "reference":
        return reference.coral_predict(logit, bias)
    if name == "compiled":
        return _compiled("coral_predict")(logit, bias)
    if name == "cpp":
        return torch.ops.bookcover.coral_predict.default(logit, bias)
    from bookcover.coral import triton_ops

    if logit.dtype == torch.float64:  # Triton computes in fp32; keep the float64 contract
        return reference.coral_predict(logit, bias)
    return triton_ops.coral_predict(logit, bias)
