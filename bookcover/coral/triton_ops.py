"""The Triton CORAL kernels as ``torch.library`` custom ops (``bookcover_triton::*``).

Imported lazily by the dispatcher (this module imports triton). The ops are opaque to
torch.compile: ``register_fake`` gives their shapes and ``register_autograd`` their backward
(itself a custom op), so ``torch.compile(fullgraph=True)`` traces a training step through them.
CUDA tensors are the normal case; CPU tensors work when TRITON_INTERPRET=1 was set before triton
was imported (that is how CI tests the kernels).
"""

from __future__ import annotations

import torch
import triton

from bookcover.coral.triton_backward_kernel import coral_grad_scale_kernel
from bookcover.coral.triton_loss_kernel import coral_loss_fwd_kernel
from bookcover.coral.triton_predict_kernel import coral_predict_kernel

_TILE = 4096  # elements of the (rows x tasks) tile per program: 16 KiB of fp32 in registers


def _blocks(batch: int, km1: int) -> tuple[int, int]:
    """(BLOCK_B, BLOCK_K): all tasks in one tile up to 64, rows filling the rest of the tile."""
    block_k = min(triton.next_power_of_2(max(km1, 1)), 64)
    block_b = max(16, min(_TILE // block_k, triton.next_power_of_2(max(batch, 1))))
    return block_b, block_k


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_device(*tensors: torch.Tensor) -> None:
    import os

    if any(t.device.type == "cpu" for t in tensors) and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")


@torch.library.custom_op("bookcover_triton::coral_loss_fwd", mutates_args=())
def coral_loss_fwd(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    compute_grad: bool,
    return_predictions: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, dg, db, probas, rank); same contract as ``torch.ops.bookcover.coral_loss_fwd``."""
    _check_device(logit, bias, labels)
    g = logit.reshape(-1).contiguous()
    b = bias.reshape(-1).contiguous()
    lab = labels.reshape(-1).contiguous()
    w = weights.reshape(-1).contiguous() if weights is not None else b
    batch, km1 = g.numel(), b.numel()
    if g.dtype == torch.float64:
        # fp64 is not a Triton fast path (gradcheck uses the C++ op); keep exact semantics.
        raise RuntimeError("impl='triton' computes in fp32; use impl='cpp' or 'reference' for float64")
    block_b, block_k = _blocks(batch, km1)
    grid = max(triton.cdiv(batch, block_b), 1)  # B=0 still launches one program: loss NaN
    f32 = dict(device=g.device, dtype=torch.float32)
    single = grid == 1  # one program: it writes the final loss and db itself
    loss = torch.empty((), **f32) if single else torch.empty(grid, **f32)
    dg = torch.empty(batch if compute_grad else 0, **f32)
    db_cols = km1 if compute_grad else 0
    db = torch.empty(db_cols, **f32) if single else torch.empty(grid, db_cols, **f32)
    probas = torch.empty(batch if return_predictions else 0, km1, **f32)
    rank = torch.empty(batch if return_predictions else 0, device=g.device, dtype=torch.int64)
    inv_b = 1.0 / batch if batch else float("nan")
    # Outputs that were not asked for are empty; the kernel never touches them (constexpr
    # flags), but a null device pointer can fail Triton's launch-time pointer check, so they
    # get a valid stand-in.
    dg_arg = dg if compute_grad and batch else loss
    db_arg = db if compute_grad else loss
    probas_arg, rank_arg = (probas, rank) if return_predictions and batch else (loss, loss)
    coral_loss_fwd_kernel[(grid,)](
        g, b, w, lab, loss, dg_arg, db_arg, probas_arg, rank_arg, batch, km1, inv_b,
        HAS_W=weights is not None, COMPUTE_GRAD=compute_grad, RETURN_PRED=return_predictions,
        BLOCK_B=block_b, BLOCK_K=block_k,
    )  # fmt: skip
    if not single:
        loss = loss.sum()
        db = db.sum(0)
    return loss, dg, db, probas, rank


@coral_loss_fwd.register_fake
def _(logit, bias, labels, weights, compute_grad, return_predictions):
    batch, km1 = logit.numel(), bias.numel()
    acc = _acc(logit.dtype)
    return (
        logit.new_empty((), dtype=acc),
        logit.new_empty((batch if compute_grad else 0,), dtype=acc),
        logit.new_empty((km1 if compute_grad else 0,), dtype=acc),
        logit.new_empty((batch if return_predictions else 0, km1), dtype=acc),
        logit.new_empty((batch if return_predictions else 0,), dtype=torch.int64),
    )


@torch.library.custom_op("bookcover_triton::coral_grad_scale", mutates_args=())
def coral_grad_scale(src: torch.Tensor, grad: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """src * grad (grad a 0-d tensor), cast to dtype: the backward of the fused loss."""
    _check_device(src, grad)
    src = src.contiguous()
    out = torch.empty(src.shape, device=src.device, dtype=dtype)
    n = src.numel()
    if n:
        block = 1024
        coral_grad_scale_kernel[(triton.cdiv(n, block),)](src, grad.reshape(()).contiguous(), out, n, BLOCK=block)
    return out


@coral_grad_scale.register_fake
def _(src, grad, dtype):
    return torch.empty_like(src, dtype=dtype)


def _setup_context(ctx, inputs, output) -> None:
    logit, bias, _labels, _weights, compute_grad, _ret = inputs
    _loss, dg, db, probas, rank = output
    ctx.compute_grad = compute_grad
    ctx.meta = (logit.shape, logit.dtype, bias.shape, bias.dtype)
    ctx.save_for_backward(dg, db)
    ctx.mark_non_differentiable(dg, db, probas, rank)


def _backward(ctx, grad_loss, _g_dg, _g_db, _g_probas, _g_rank):
    if not ctx.compute_grad:
        raise RuntimeError("coral_loss_fwd was called with compute_grad=False but a gradient was requested")
    dg, db = ctx.saved_tensors
    logit_shape, logit_dtype, bias_shape, bias_dtype = ctx.meta
    grad_logit = coral_grad_scale(dg, grad_loss, logit_dtype).reshape(logit_shape)
    grad_bias = coral_grad_scale(db, grad_loss, bias_dtype).reshape(bias_shape)
    return grad_logit, grad_bias, None, None, None, None


coral_loss_fwd.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("bookcover_triton::coral_predict", mutates_args=())
def coral_predict(logit: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probas (B, K-1) fp32, rank (B,) int64) from the shared logit and the task biases."""
    _check_device(logit, bias)
    g = logit.reshape(-1).contiguous()
    b = bias.reshape(-1).contiguous()
    batch, km1 = g.numel(), b.numel()
    probas = torch.empty(batch, km1, device=g.device, dtype=torch.float32)
    rank = torch.empty(batch, device=g.device, dtype=torch.int64)
    if batch:
        block_b, block_k = _blocks(batch, km1)
        coral_predict_kernel[(triton.cdiv(batch, block_b),)](
            g, b, probas, rank, batch, km1, BLOCK_B=block_b, BLOCK_K=block_k
        )
    return probas, rank


@coral_predict.register_fake
def _(logit, bias):
    batch, km1 = logit.numel(), bias.numel()
    return logit.new_empty((batch, km1), dtype=torch.float32), logit.new_empty((batch,), dtype=torch.int64)
