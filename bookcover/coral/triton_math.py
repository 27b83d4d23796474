"""Fast-math helpers shared by the Triton CORAL kernels (not a kernel itself).

The kernels move 12-16 bytes per row and run 2-3 transcendental ops per (row, task), so on an
H200 the special-function unit (MUFU, 16 ops/clock/SM) is as busy as HBM. Every op here is one
MUFU instruction on the GPU:

* ``tl.exp2`` lowers to ``ex2.approx.ftz.f32`` (relative error ~2^-22); ``tl.exp`` would add a
  multiply, ``tl.log`` calls libdevice's full-precision ``__nv_logf`` (~20 instructions).
* :func:`log2` is ``lg2.approx.ftz.f32`` (absolute error ~2^-22 on [1, 2^32], the range it sees).
* :func:`rcp` is ``rcp.approx.ftz.f32`` (1 ulp) on denominators in [1, 2]; Triton's ``/`` is
  ``div.full.f32``, a reciprocal plus range fix-ups.

Both errors are far inside the fp32 tolerance (atol/rtol 1e-5 on losses and gradients). With
``FAST=False`` (how the launchers call them under TRITON_INTERPRET=1, which has no inline PTX)
they are the plain ``tl.log2`` and ``1 / x``.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)  # 1 / ln 2: exp(x) = 2^(x log2 e)
LN2 = tl.constexpr(0.6931471805599453)  # ln(x) = log2(x) ln 2


@triton.jit
def log2(x, FAST: tl.constexpr):
    """log2 of fp32 x >= 1 (no denormals, so ftz is exact here)."""
    if FAST:
        return tl.inline_asm_elementwise(
            "lg2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1
        )
    else:
        return tl.log2(x)


@triton.jit
def rcp(x, FAST: tl.constexpr):
    """1 / x for fp32 x in [1, 2]."""
    if FAST:
        return tl.inline_asm_elementwise(
            "rcp.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1
        )
    else:
        return 1.0 / x


@triton.jit
def exp_neg_abs(z):
    """exp(-|z|) in (0, 1]: one ex2.approx; -inf (padding rows) gives exactly 0."""
    return tl.exp2(tl.abs(z) * -LOG2E)
