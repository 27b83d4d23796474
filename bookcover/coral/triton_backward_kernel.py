"""Triton kernel: the CORAL backward, grad_in = saved_grad * grad_output, cast to the input dtype.

The forward kernel already computed dL/dg and dL/db (scaled by 1/B); backward is one fused
multiply-and-cast. grad_output is read from device memory, so there is no host sync.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def coral_grad_scale_kernel(src_ptr, grad_ptr, out_ptr, N, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    scale = tl.load(grad_ptr).to(tl.float32)
    x = tl.load(src_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, (x * scale).to(out_ptr.dtype.element_ty), mask=mask)
