"""The Triton CORAL kernels behind their two doors: eager launches and torch.library ops.

Imported lazily by the dispatcher (this module imports triton). :func:`coral_loss` and
:func:`predict` pick the door per call:

* eager (and while a CUDA graph is captured): a ``torch.autograd.Function`` that calls Triton's
  Python launchers directly; its backward scales the saved gradients with two ATen multiplies.
  A ``torch.library`` op call (schema checks, dispatcher, Python autograd registration) would
  cost several times the kernel itself at small batches (the dispatcher sends small eager CUDA
  calls to the C++ op anyway: bookcover.coral.dispatch).
* under ``torch.compile``: the ``bookcover_triton::*`` custom ops, opaque to the compiler with
  ``register_fake`` shapes and a ``register_autograd`` backward (itself a custom op), so
  ``torch.compile(fullgraph=True)`` traces a training step through them.

Both doors run the same kernels. CUDA tensors are the normal case; CPU tensors work when
TRITON_INTERPRET=1 was set before triton was imported (that is how CI tests the kernels; the
fast-math PTX paths are then replaced by plain tl.log2 and division).
"""

from __future__ import annotations

import functools

import torch
import triton

from bookcover.coral import triton_configs as cfgs
from bookcover.coral.dispatch import TRITON_INTERPRET
from bookcover.coral.triton_backward_kernel import coral_grad_scale_kernel
from bookcover.coral.triton_loss_kernel import coral_loss_fwd_kernel
from bookcover.coral.triton_predict_kernel import coral_predict_kernel
from bookcover.coral.triton_reduce_kernel import coral_loss_reduce_kernel

_FAST = not TRITON_INTERPRET  # inline-PTX approximations; the interpreter has no PTX
# Under the interpreter (CPU tests) pretend to have 1 SM, so that mid-size batches already
# exercise the grid-stride loop and the partial-sum reduction.
_INTERPRET_SMS = 1
_SMS: dict[int, int] = {}
_F32 = torch.float32


def _num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device, cached (no device query per call)."""
    if device.type != "cuda":
        return _INTERPRET_SMS
    index = device.index if device.index is not None else torch.cuda.current_device()
    sms = _SMS.get(index)
    if sms is None:
        sms = _SMS[index] = torch.cuda.get_device_properties(index).multi_processor_count
    return sms


def _check_device(t: torch.Tensor) -> None:
    if t.device.type == "cpu" and not TRITON_INTERPRET:
        raise RuntimeError("impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1) if t.is_contiguous() else t.contiguous().reshape(-1)


# --- launchers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _loss_plan(
    batch: int, km1: int, return_pred: bool, num_sms: int, narrow: bool = False
) -> tuple[cfgs.LossConfig, int, int, int]:
    """(config, grid, BLOCK_K, PRED_ROWS) for one shape, cached: the table walk is not redone
    on every training step."""
    cfg = cfgs.loss_config(batch, return_pred, narrow)
    grid = cfgs.loss_grid(batch, cfg, num_sms)
    return cfg, grid, cfgs.block_k(km1), min(cfgs.pred_rows(km1, cfg.num_warps), cfg.block_b)


def loss_fwd(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    compute_grad: bool,
    return_predictions: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(loss, dg, db, probas, rank), as ``torch.ops.bookcover.coral_loss_fwd`` but lean.

    dg (B) and db (K-1) are dL/dlogit and dL/dbias in fp32 (empty unless compute_grad);
    probas (B, K-1) fp32 and rank (B) int64 are None unless return_predictions.
    """
    _check_device(logit)
    if logit.dtype == torch.float64:
        # fp64 is not a Triton fast path (gradcheck uses the C++ op); keep exact semantics.
        raise RuntimeError("impl='triton' computes in fp32; use impl='cpp' or 'reference' for float64")
    g, b, lab = _flat(logit), _flat(bias), _flat(labels)
    w = _flat(weights) if weights is not None else b
    batch, km1 = g.numel(), b.numel()
    if lab.numel() != batch:
        raise ValueError(f"coral: labels must have one entry per logit; got {lab.numel()} labels for {batch} logits")
    device = g.device
    narrow = cfgs.is_narrow(g.element_size(), lab.element_size())
    cfg, grid, block_k, pred_rows = _loss_plan(batch, km1, return_predictions, _num_sms(device), narrow)
    loss = torch.empty((), device=device, dtype=_F32)
    dg = torch.empty(batch if compute_grad else 0, device=device, dtype=_F32)
    db = torch.empty(km1 if compute_grad else 0, device=device, dtype=_F32)
    probas = torch.empty(batch, km1, device=device, dtype=_F32) if return_predictions else None
    rank = torch.empty(batch, device=device, dtype=torch.int64) if return_predictions else None
    part = torch.empty(grid, km1 + 1, device=device, dtype=_F32) if grid > 1 else loss
    inv_b = 1.0 / batch if batch else float("nan")  # B=0: loss NaN, like the reference's mean
    # Outputs not asked for get a valid stand-in pointer (Triton checks pointers at launch);
    # the constexpr flags keep the kernel from touching them.
    dg_arg = dg if compute_grad and batch else loss
    db_arg = db if compute_grad else loss
    coral_loss_fwd_kernel[(grid,)](
        g, b, w, lab, loss, dg_arg, db_arg, part,
        probas if return_predictions and batch else loss, rank if return_predictions and batch else loss,
        batch, km1, inv_b,
        HAS_W=weights is not None, COMPUTE_GRAD=compute_grad, RETURN_PRED=return_predictions,
        BLOCK_B=cfg.block_b, BLOCK_K=block_k, PRED_ROWS=pred_rows, FAST=_FAST, num_warps=cfg.num_warps,
    )  # fmt: skip
    if grid > 1:
        ncols = km1 + 1 if compute_grad else 1
        block_p, block_j = cfgs.reduce_blocks(ncols)
        coral_loss_reduce_kernel[(triton.cdiv(ncols, block_j),)](
            part, loss, db_arg, grid, km1 + 1, ncols, inv_b, BLOCK_P=block_p, BLOCK_J=block_j, num_warps=4
        )
    return loss, dg, db, probas, rank


def grad_scale(
    dg: torch.Tensor, db: torch.Tensor, grad: torch.Tensor, logit_dtype: torch.dtype, bias_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dg * grad as logit_dtype, db * grad as bias_dtype), one launch; grad is a 0-d tensor."""
    _check_device(dg)
    batch, km1 = dg.numel(), db.numel()
    grad_g = torch.empty(batch, device=dg.device, dtype=logit_dtype)
    grad_b = torch.empty(km1, device=dg.device, dtype=bias_dtype)
    block, warps = cfgs.grad_block(batch)
    grid = max(triton.cdiv(batch, block), 1)
    coral_grad_scale_kernel[(grid,)](
        dg, db, grad.reshape(()).to(_F32), grad_g, grad_b, batch, km1,
        BLOCK=block, BLOCK_K=cfgs.block_k(km1), num_warps=warps,
    )  # fmt: skip
    return grad_g, grad_b


def predict_fwd(logit: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probas (B, K-1) fp32, rank (B,) int64)."""
    _check_device(logit)
    g, b = _flat(logit), _flat(bias)
    batch, km1 = g.numel(), b.numel()
    probas = torch.empty(batch, km1, device=g.device, dtype=_F32)
    rank = torch.empty(batch, device=g.device, dtype=torch.int64)
    if batch:
        rows = cfgs.pred_rows(km1)
        coral_predict_kernel[(triton.cdiv(batch, rows),)](
            g, b, probas, rank, batch, km1, ROWS=rows, BLOCK_K=cfgs.block_k(km1), FAST=_FAST, num_warps=cfgs.PRED_WARPS
        )
    return probas, rank


# --- eager door: autograd.Function ----------------------------------------------------------


class _CoralLoss(torch.autograd.Function):
    """Eager autograd for the fused loss: forward saves dg/db, backward scales them."""

    @staticmethod
    def forward(ctx, logit, bias, labels, weights, return_predictions):  # noqa: D102
        loss, dg, db, probas, rank = loss_fwd(logit, bias, labels, weights, True, return_predictions)
        ctx.save_for_backward(dg, db)
        ctx.meta = (logit.shape, logit.dtype, bias.shape, bias.dtype)
        if return_predictions:
            ctx.mark_non_differentiable(probas, rank)
        ctx.set_materialize_grads(False)  # no zero tensors for the probas/rank "gradients"
        return loss, probas, rank

    @staticmethod
    def backward(ctx, grad_loss, _grad_probas, _grad_rank):  # noqa: D102
        if grad_loss is None:
            return None, None, None, None, None
        dg, db = ctx.saved_tensors
        logit_shape, logit_dtype, bias_shape, bias_dtype = ctx.meta
        grad_g, grad_b = scale_with_aten(dg, db, grad_loss, logit_dtype, bias_dtype)
        return grad_g.reshape(logit_shape), grad_b.reshape(bias_shape), None, None, None


# The eager backward is two ATen multiplies (dispatched in C++), not a launch of
# coral_grad_scale_kernel through Triton's Python launcher: measured side by side on an H200,
# fwd+bwd at B=256 took 398 µs this way against 520 µs (bench/RESULTS.md). The compile door's
# backward (coral_grad_scale below) launches the kernel: there no launch costs host time.


def scale_with_aten(
    dg: torch.Tensor, db: torch.Tensor, grad: torch.Tensor, logit_dtype: torch.dtype, bias_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """grad_scale's result with ATen ops: (dg * grad as logit_dtype, db * grad as bias_dtype)."""
    grad = grad.reshape(()).to(_F32)
    return (dg * grad).to(logit_dtype), (db * grad).to(bias_dtype)


def coral_loss(
    logit: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    compute_grad: bool,
    return_predictions: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, probas, rank): the custom op under torch.compile, the lean eager path otherwise."""
    if torch.compiler.is_compiling():
        loss, _, _, probas, rank = coral_loss_fwd(logit, bias, labels, weights, compute_grad, return_predictions)
        return loss, probas, rank
    if compute_grad:
        return _CoralLoss.apply(logit, bias, labels, weights, return_predictions)
    loss, _, _, probas, rank = loss_fwd(logit, bias, labels, weights, False, return_predictions)
    return loss, probas, rank


def predict(logit: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if torch.compiler.is_compiling():
        return coral_predict(logit, bias)
    return predict_fwd(logit, bias)


# --- compile door: torch.library custom ops ------------------------------------------------
#
# Why custom_op and not torch.library.triton_op + wrap_triton (issue 18 asked for it if it keeps
# parity and the fullgraph step): under TRITON_INTERPRET=1, which is how CI tests these kernels
# on CPU, ``triton.jit`` returns an ``InterpretedFunction``, not a ``JITFunction``, so
# wrap_triton cannot turn the launch into a traceable kernel call; torch.compile then runs the
# op's body on FakeTensors to get its fake implementation and the interpreter fails ("Cannot
# access data pointer of Tensor (e.g. FakeTensor ...)"), tried with torch 2.14.1 and triton 3.8
# on a minimal triton_op. The fullgraph training-step test would then pass only on a GPU. The
# custom ops below are opaque to inductor (it cannot fuse into the kernels), with explicit
# register_fake shapes and a register_autograd backward; both work under the interpreter and on CUDA.


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
    loss, dg, db, probas, rank = loss_fwd(logit, bias, labels, weights, compute_grad, return_predictions)
    if not return_predictions:  # the op's schema returns tensors: empty ones
        probas = dg.new_empty((0, bias.numel()))
        rank = dg.new_empty(0, dtype=torch.int64)
    return loss, dg, db, probas, rank


@coral_loss_fwd.register_fake
def _(logit, bias, labels, weights, compute_grad, return_predictions):
    batch, km1 = logit.numel(), bias.numel()
    return (
        logit.new_empty((), dtype=_F32),
        logit.new_empty((batch if compute_grad else 0,), dtype=_F32),
        logit.new_empty((km1 if compute_grad else 0,), dtype=_F32),
        logit.new_empty((batch if return_predictions else 0, km1), dtype=_F32),
        logit.new_empty((batch if return_predictions else 0,), dtype=torch.int64),
    )


@torch.library.custom_op("bookcover_triton::coral_grad_scale", mutates_args=())
def coral_grad_scale(
    dg: torch.Tensor, db: torch.Tensor, grad: torch.Tensor, logit_dtype: torch.dtype, bias_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dg * grad, db * grad) cast to the input dtypes (grad a 0-d tensor): the fused backward."""
    return grad_scale(dg, db, grad, logit_dtype, bias_dtype)


@coral_grad_scale.register_fake
def _(dg, db, grad, logit_dtype, bias_dtype):
    return torch.empty_like(dg, dtype=logit_dtype), torch.empty_like(db, dtype=bias_dtype)


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
    grad_g, grad_b = coral_grad_scale(dg, db, grad_loss, logit_dtype, bias_dtype)
    return grad_g.reshape(logit_shape), grad_b.reshape(bias_shape), None, None, None, None


coral_loss_fwd.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("bookcover_triton::coral_predict", mutates_args=())
def coral_predict(logit: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probas (B, K-1) fp32, rank (B,) int64) from the shared logit and the task biases."""
    return predict_fwd(logit, bias)


@coral_predict.register_fake
def _(logit, bias):
    batch, km1 = logit.numel(), bias.numel()
    return logit.new_empty((batch, km1), dtype=_F32), logit.new_empty((batch,), dtype=torch.int64)
