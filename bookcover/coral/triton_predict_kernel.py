"""Triton kernel: CORAL inference (probabilities P(level > k) and the predicted rank) only.

Used by predict, LIME and the GAN's popularity scoring, where no labels or loss exist; the loss
kernel calls :func:`predict_tile` too when it is asked for predictions. Per row it reads g (4 B)
and writes K-1 probabilities and an int64 rank, so the probas store is most of the traffic.
It is therefore done on a 2-D (rows x tasks) tile whose default layout puts consecutive tasks
of a row on consecutive lanes: one warp store covers 32 consecutive floats of the row-major
(B, K-1) output. (A task-by-task store from a rows-only layout would touch 32 sectors per
warp instruction.) One ex2 and one rcp per element, fp32 math.
"""

from __future__ import annotations

import triton
import triton.language as tl

from bookcover.coral import triton_math as fm


@triton.jit
def predict_tile(g_ptr, b_ptr, probas_ptr, rank_ptr, row0, B, KM1,
                 ROWS: tl.constexpr, BLOCK_K: tl.constexpr, FAST: tl.constexpr):  # fmt: skip
    """probas and rank of rows row0 .. row0+ROWS-1 (row0 int64: B x (K-1) may pass 2^31)."""
    rows = row0 + tl.arange(0, ROWS)
    ks = tl.arange(0, BLOCK_K)
    rmask = rows < B
    kmask = ks < KM1
    g = tl.load(g_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + ks, mask=kmask, other=0.0).to(tl.float32)
    z = g[:, None] + b[None, :]
    e = fm.exp_neg_abs(z)
    r = fm.rcp(1.0 + e, FAST)
    p = tl.where(z >= 0.0, r, e * r)  # sigmoid(z), stable for both signs
    mask = rmask[:, None] & kmask[None, :]
    tl.store(probas_ptr + rows[:, None] * KM1 + ks[None, :], p, mask=mask)
    rank = tl.sum(tl.where(mask & (p > 0.5), 1, 0), axis=1)
    tl.store(rank_ptr + rows, rank.to(tl.int64), mask=rmask)


@triton.jit
def coral_predict_kernel(g_ptr, b_ptr, probas_ptr, rank_ptr, B, KM1,
                         ROWS: tl.constexpr, BLOCK_K: tl.constexpr, FAST: tl.constexpr):  # fmt: skip
    row0 = tl.program_id(0).to(tl.int64) * ROWS
    predict_tile(g_ptr, b_ptr, probas_ptr, rank_ptr, row0, B, KM1, ROWS, BLOCK_K, FAST)
