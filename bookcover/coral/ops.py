"""The CORAL loss and prediction, run by the route that bookcover.coral.dispatch chooses.

``impl`` names: "reference" (the eager oracle), "compiled" (torch.compile of the oracle),
"triton" (the fused Triton kernels), "cpp" (the fused csrc/ op, CPU and CUDA) and "auto"
(the dispatch table picks per device and mode; see :mod:`bookcover.coral.dispatch`). An
explicit impl that cannot run here raises CoralImplError; it never falls back.

Triton is imported only when a Triton route actually runs, so importing bookcover.coral never
imports triton (TRITON_INTERPRET must be set before that import).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bookcover.coral import reference
from bookcover.coral.dispatch import IMPLS, last_route, resolve_route, route_of_call

__all__ = ["IMPLS", "coral_loss", "coral_predict", "last_route", "resolve_route"]

_COMPILED: dict[str, Callable] = {}


def _compiled(name: str) -> Callable:
    """torch.compile of the reference function. dynamic=True: batch sizes vary (the last batch
    of an epoch, LIME's perturbation counts), and one graph serves them all."""
    fn = _COMPILED.get(name)
    if fn is None:
        fn = _COMPILED[name] = torch.compile(getattr(reference, name), dynamic=True)
    return fn


_triton_ops = None  # bookcover.coral.triton_ops once first used (importing it imports triton)


def _triton():
    global _triton_ops
    if _triton_ops is None:
        from bookcover.coral import triton_ops

        _triton_ops = triton_ops
    return _triton_ops


# Integer dtypes the label check accepts without reading data.
_INT_DTYPES = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})


def _check_label_dtype(labels: torch.Tensor, num_levels: int) -> None:
    """The cheap part of label validation (no data read, no sync): dtype and number of levels."""
    if labels.dtype not in _INT_DTYPES or num_levels < 2:
        reference.check_label_dtype(labels, num_levels)  # raises the one-line error


def _cpp_loss_fwd(*args):
    """The C++ op (C++ autograd; on CPU a fused backward without further dispatch)."""
    return torch.ops.bookcover.coral_loss_fwd.default(*args)


def coral_loss(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    task_weights: torch.Tensor | None = None,
    *,
    impl: str = "auto",
    return_predictions: bool = False,
    check_labels: bool = False,
):
    """CORAL loss (sum over tasks, mean over batch), by the implementation named ``impl``.

    With ``return_predictions=True`` returns ``(loss, probas, rank)`` from the same pass.

    Labels: the dtype is checked on every call (no data read). Their range is checked on the
    device: a label outside 0..K-1 makes the loss NaN in every implementation, with no host
    sync, because the training data is validated once when it is built and a training step
    must not wait on the GPU. Library users who pass labels from elsewhere can set
    ``check_labels=True`` to get an InvalidLabelsError instead (one device-to-host sync).
    """
    name = route_of_call(impl, logit)
    num_levels = bias.numel() + 1
    _check_label_dtype(labels, num_levels)
    if check_labels and not torch.compiler.is_compiling():
        reference.check_labels(labels, num_levels)
    if name == "reference" or name == "compiled":
        fn = reference.coral_loss if name == "reference" else _compiled("coral_loss")
        loss = fn(logit, bias, labels, task_weights)
        if not return_predictions:
            return loss
        probas, rank = reference.coral_predict(logit.detach(), bias.detach())
        return loss, probas, rank
    grad = torch.is_grad_enabled() and (logit.requires_grad or bias.requires_grad)
    if name == "cpp":
        out = _cpp_loss_fwd(logit, bias, labels, task_weights, grad, return_predictions)
        return (out[0], out[3], out[4]) if return_predictions else out[0]
    loss, probas, rank = _triton().coral_loss(logit, bias, labels, task_weights, grad, return_predictions)
    return (loss, probas, rank) if return_predictions else loss


def coral_predict(logit: torch.Tensor, bias: torch.Tensor, *, impl: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """(probas (B, K-1) = P(level > k), rank (B,) int64), by the implementation named ``impl``.

    While exporting to ONNX (or tracing), ``auto`` gives the reference: plain ONNX operators
    that any runtime can execute, instead of a custom op only this package registers.
    """
    if impl == "auto" and (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        return reference.coral_predict(logit, bias)
    name = route_of_call(impl, logit)
    if name == "reference":
        return reference.coral_predict(logit, bias)
    if name == "compiled":
        return _compiled("coral_predict")(logit, bias)
    if name == "cpp":
        return torch.ops.bookcover.coral_predict.default(logit, bias)
    return _triton().predict(logit, bias)
