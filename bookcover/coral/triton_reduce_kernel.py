"""Triton kernel: the final, fixed-order sum of the loss kernel's per-program partials.

The loss kernel writes one row [loss, db_0 .. db_{K-2}] per program (one wave of programs,
so at most a few thousand rows). This tiny pass sums each column over the programs in a fixed
order (deterministic, unlike float atomics), scales by 1/B and writes the 0-d loss and db.
It replaces two torch reductions (loss.sum() and a strided db.sum(0): 24 µs at 16M rows on
the H200) and never touches B-sized data.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def coral_loss_reduce_kernel(part_ptr, loss_ptr, db_ptr, P, STRIDE, NCOLS, inv_b,
                             BLOCK_P: tl.constexpr, BLOCK_J: tl.constexpr):  # fmt: skip
    """part (P, STRIDE) -> loss = sum(part[:, 0]) / B, db = sum(part[:, 1:NCOLS], 0) / B."""
    cols = tl.program_id(0) * BLOCK_J + tl.arange(0, BLOCK_J)
    cmask = cols < NCOLS
    acc = tl.zeros([BLOCK_P, BLOCK_J], dtype=tl.float32)
    for p0 in range(0, P, BLOCK_P):
        ps = p0 + tl.arange(0, BLOCK_P)
        mask = (ps[:, None] < P) & cmask[None, :]
        acc += tl.load(part_ptr + ps[:, None] * STRIDE + cols[None, :], mask=mask, other=0.0)
    total = tl.sum(acc, axis=0) * inv_b
    tl.store(loss_ptr + cols * 0, total, mask=cols == 0)
    tl.store(db_ptr + (cols - 1), total, mask=cmask & (cols > 0))
