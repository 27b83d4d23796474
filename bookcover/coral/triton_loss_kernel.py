"""Triton kernel: the fused CORAL loss forward (loss, closed-form gradients, optional predictions).

One program handles BLOCK_B rows and walks the K-1 tasks in tiles of BLOCK_K. Levels
y_ik = 1[label_i > k] are formed in registers; nothing of size B x (K-1) is read or written
unless probas are asked for. Math is fp32 whatever the input dtype.

Because dL/dz_ik = w_k (sigmoid(z_ik) - y_ik) / B is known in closed form, the gradients are
computed here too (as Liger-Kernel does for cross-entropy): the backward kernel then only
scales them by grad_output, and the logits are read from HBM once per training step.

db reduction: each program writes its partial column sums to its own row of a
(num_programs, K-1) buffer, which is then summed in a fixed order (torch.sum over dim 0). We
chose this over atomics because thousands of programs hitting the same K-1 addresses serialise,
and float atomics make the result change from run to run; the buffer is tiny (4 bytes x (K-1)
per BLOCK_B rows). With a single program, it writes the final values directly.

Invalid labels (outside 0..K-1) turn the loss NaN instead of reading out of range: the eager
wrapper validates labels before launching, and under torch.compile this NaN is what the
training loop's finiteness check catches. Only tl.exp/tl.log are used (no libdevice), so the
kernel runs under TRITON_INTERPRET=1.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def coral_loss_fwd_kernel(
    g_ptr,
    b_ptr,
    w_ptr,
    lab_ptr,
    loss_ptr,
    dg_ptr,
    db_ptr,
    probas_ptr,
    rank_ptr,
    B,
    KM1,
    inv_b,
    HAS_W: tl.constexpr,
    COMPUTE_GRAD: tl.constexpr,
    RETURN_PRED: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    g = tl.load(g_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
    lab = tl.load(lab_ptr + rows, mask=rmask, other=0).to(tl.int64)
    bad = rmask & ((lab < 0) | (lab > KM1))
    loss_rows = tl.zeros([BLOCK_B], dtype=tl.float32)
    dg_rows = tl.zeros([BLOCK_B], dtype=tl.float32)
    rank_rows = tl.zeros([BLOCK_B], dtype=tl.int32)
    for k0 in range(0, KM1, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        kmask = ks < KM1
        b = tl.load(b_ptr + ks, mask=kmask, other=0.0).to(tl.float32)
        if HAS_W:
            w = tl.load(w_ptr + ks, mask=kmask, other=0.0).to(tl.float32)
        else:
            w = tl.where(kmask, 1.0, 0.0)
        mask2 = rmask[:, None] & kmask[None, :]
        z = g[:, None] + b[None, :]
        y = tl.where(lab[:, None] > ks[None, :], 1.0, 0.0)
        e = tl.exp(-tl.abs(z))
        # y = 1: softplus(-z); y = 0: softplus(z); softplus(x) = max(x, 0) + log(1 + exp(-|x|)).
        signed_z = tl.where(y > 0.5, -z, z)
        # log1p(e) without libdevice: Goldberg's trick log(u) * e / (u - 1), exact where u == 1.
        u = 1.0 + e
        um1 = u - 1.0
        log1p_e = tl.where(um1 == 0.0, e, tl.log(u) * (e / tl.where(um1 == 0.0, 1.0, um1)))
        per_task = w[None, :] * (tl.maximum(signed_z, 0.0) + log1p_e)
        loss_rows += tl.sum(tl.where(mask2, per_task, 0.0), axis=1)
        if COMPUTE_GRAD or RETURN_PRED:
            r = 1.0 / (1.0 + e)
            p = tl.where(z >= 0.0, r, e * r)
            if COMPUTE_GRAD:
                d = tl.where(mask2, w[None, :] * (p - y), 0.0)
                dg_rows += tl.sum(d, axis=1)
                tl.store(db_ptr + pid * KM1 + ks, tl.sum(d, axis=0) * inv_b, mask=kmask)
            if RETURN_PRED:
                tl.store(probas_ptr + rows[:, None] * KM1 + ks[None, :], p, mask=mask2)
                rank_rows += tl.sum(tl.where(mask2 & (p > 0.5), 1, 0), axis=1)
    loss_rows = tl.where(bad, float("nan"), loss_rows)
    tl.store(loss_ptr + pid, tl.sum(loss_rows, axis=0) * inv_b)
    if COMPUTE_GRAD:
        tl.store(dg_ptr + rows, dg_rows * inv_b, mask=rmask)
    if RETURN_PRED:
        tl.store(rank_ptr + rows, rank_rows.to(tl.int64), mask=rmask)
