"""Triton kernel: the CORAL backward, grad_in = saved_grad * grad_output, cast to the input dtype.

The forward kernel already computed dL/dg (B) and dL/db (K-1), scaled by 1/B; backward is one
fused multiply-and-cast for both in a single launch (program 0 also does db). grad_output is
read from device memory, so there is no host sync.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def coral_grad_scale_kernel(dg_ptr, db_ptr, grad_ptr, grad_g_ptr, grad_b_ptr, B, KM1,
                            BLOCK: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0)
    scale = tl.load(grad_ptr).to(tl.float32)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < B
    x = tl.load(dg_ptr + offs, mask=mask, other=0.0)
    tl.store(grad_g_ptr + offs, (x * scale).to(grad_g_ptr.dtype.element_ty), mask=mask)
    if pid == 0:
        ks = tl.arange(0, BLOCK_K)
        kmask = ks < KM1
        db = tl.load(db_ptr + ks, mask=kmask, other=0.0)
        tl.store(grad_b_ptr + ks, (db * scale).to(grad_b_ptr.dtype.element_ty), mask=kmask)
