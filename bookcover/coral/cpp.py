"""The csrc/ fused CORAL op (``torch.ops.bookcover``): loading, fake tensors and autograd.

The C++/CUDA kernels register the schema with ``TORCH_LIBRARY``; as in pytorch/extension-cpp,
the fake (meta) implementation and the autograd formula live here in Python, so that
``torch.compile`` and ``torch.library.opcheck`` see the op. The extension is optional: when
``bookcover._C`` was not built, :func:`available` is False and the dispatcher falls back.
"""

from __future__ import annotations

import torch

_LOADED: bool | None = None


def available() -> bool:
    """True when the compiled extension (``bookcover._C``) imports; registers it on first call."""
    global _LOADED
    if _LOADED is None:
        try:
            import bookcover._C  # noqa: F401  (loads the library: TORCH_LIBRARY registrations)
        except ImportError:
            _LOADED = False
        else:
            _register_python_side()
            _LOADED = True
    return _LOADED


def _acc_dtype(logit: torch.Tensor) -> torch.dtype:
    return torch.float64 if logit.dtype == torch.float64 else torch.float32


def _register_python_side() -> None:
    """Fake implementations and the autograd formula of the C++ ops."""

    @torch.library.register_fake("bookcover::coral_loss_fwd")
    def _(logit, bias, labels, weights, compute_grad, return_predictions):
        acc = _acc_dtype(logit)
        batch, km1 = logit.numel(), bias.numel()
        torch._check(labels.numel() == batch)
        loss = logit.new_empty((), dtype=acc)
        dg = logit.new_empty((batch if compute_grad else 0,), dtype=acc)
        db = logit.new_empty((km1 if compute_grad else 0,), dtype=acc)
        probas = logit.new_empty((batch if return_predictions else 0, km1), dtype=acc)
        rank = logit.new_empty((batch if return_predictions else 0,), dtype=torch.int64)
        return loss, dg, db, probas, rank

    @torch.library.register_fake("bookcover::coral_predict")
    def _(logit, bias):
        batch, km1 = logit.numel(), bias.numel()
        return logit.new_empty((batch, km1), dtype=_acc_dtype(logit)), logit.new_empty((batch,), dtype=torch.int64)

    torch.library.register_autograd(
        "bookcover::coral_loss_fwd", _loss_backward, setup_context=_loss_setup_context
    )


def _loss_setup_context(ctx, inputs, output) -> None:
    logit, bias, _labels, _weights, compute_grad, _ret = inputs
    _loss, dg, db, probas, rank = output
    ctx.compute_grad = compute_grad
    ctx.logit_meta = (logit.shape, logit.dtype)
    ctx.bias_meta = (bias.shape, bias.dtype)
    ctx.save_for_backward(dg, db)
    ctx.mark_non_differentiable(dg, db, probas, rank)


def _loss_backward(ctx, grad_loss, _g_dg, _g_db, _g_probas, _g_rank):
    """The gradient was computed in the forward pass; backward only scales it by grad_loss."""
    if not ctx.compute_grad:
        raise RuntimeError("coral_loss_fwd was called with compute_grad=False but a gradient was requested")
    dg, db = ctx.saved_tensors
    grad_logit = (dg * grad_loss).to(ctx.logit_meta[1]).reshape(ctx.logit_meta[0])
    grad_bias = (db * grad_loss).to(ctx.bias_meta[1]).reshape(ctx.bias_meta[0])
    return grad_logit, grad_bias, None, None, None, None
