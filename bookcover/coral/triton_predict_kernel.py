"""Triton kernel: CORAL inference (probabilities P(level > k) and the predicted rank) only.

Used by predict, LIME and the GAN's popularity scoring, where no labels or loss exist. One
exp and one division per element, fp32 math, one read of g and one write of probas.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def coral_predict_kernel(
    g_ptr,
    b_ptr,
    probas_ptr,
    rank_ptr,
    B,
    KM1,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B)
    rmask = rows < B
    g = tl.load(g_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
    rank_rows = tl.zeros([BLOCK_B], dtype=tl.int32)
    for k0 in range(0, KM1, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        kmask = ks < KM1
        b = tl.load(b_ptr + ks, mask=kmask, other=0.0).to(tl.float32)
        mask2 = rmask[:, None] & kmask[None, :]
        z = g[:, None] + b[None, :]
        e = tl.exp(-tl.abs(z))
        r = 1.0 / (1.0 + e)
        p = tl.where(z >= 0.0, r, e * r)
        tl.store(probas_ptr + rows[:, None] * KM1 + ks[None, :], p, mask=mask2)
        rank_rows += tl.sum(tl.where(mask2 & (p > 0.5), 1, 0), axis=1)
    tl.store(rank_ptr + rows, rank_rows.to(tl.int64), mask=rmask)
