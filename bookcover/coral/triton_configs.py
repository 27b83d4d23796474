"""Launch configurations of the Triton CORAL kernels: a static table keyed on (B, K).

triton.autotune does not run under TRITON_INTERPRET=1 (how CI tests the kernels), and a
static table can be checked exhaustively offline: tests/coral/test_triton_registers.py
compiles every configuration listed by :func:`shipped` for sm_90a and asserts no spills and
at most 128 registers per thread (the figures are in bench/RESULTS.md). This module does not
import triton.

How the entries were derived (H200: 132 SMs, 64 K registers and 64 warps per SM, ~4.8 TB/s):
* The loss forward moves 16 bytes per row (fp32 g, int64 label, fp32 dg). To keep HBM busy an
  SM needs ~27 KB in flight (Little's law at ~750 ns latency), i.e. ~2,300 rows. With 8 rows
  per thread, 4 warps and 5 resident programs (<= 96 registers) an SM has 5,120 rows of loads
  in flight at once; 8 rows per thread also amortise the per-task block reduction of db
  (~25 instructions per task and tile) against ~19 instructions per (row, task).
* Large B: the grid is one wave of resident programs (SMs x ``progs_per_sm``), each walking
  tiles grid-stride, so the partial sums (one row per program) stay at a few hundred rows.
  ``progs_per_sm`` follows from the register count (see :func:`resident_programs`); the
  register test checks each entry's count still allows it.
* Small B: one program does everything (no second launch; B=256 is host-bound) with 2-4 rows
  per thread for a short critical path.
* Predictions (return_predictions, coral_predict) use a 2-D tile of ``PRED_PER_THREAD``
  elements per thread.
"""

from __future__ import annotations

from dataclasses import dataclass


def next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


@dataclass(frozen=True)
class LossConfig:
    block_b: int  # rows per tile
    num_warps: int
    progs_per_sm: int  # resident programs per SM at this entry's register count


# (largest B, config); the last entry has no bound. With predictions (RETURN_PRED) the
# per-row work is larger, so that variant uses half the rows per thread.
LOSS_TABLE: tuple[tuple[int | None, LossConfig], ...] = (
    (64, LossConfig(64, 1, 16)),
    (256, LossConfig(256, 2, 16)),
    (None, LossConfig(1024, 4, 5)),
)
LOSS_TABLE_PRED: tuple[tuple[int | None, LossConfig], ...] = (
    (64, LossConfig(64, 1, 16)),
    (256, LossConfig(256, 2, 16)),
    (None, LossConfig(512, 4, 5)),
)
# Half-precision logits with uint8 labels at the large tile: 8 rows per thread spilled 4 bytes
# under the ptxas of triton 3.6 (the H200 image's), not under 3.8. With 8 warps (4 rows per
# thread) neither spills, at 40 registers: 6 programs of 8 warps fit on an SM; the grid keeps 5,
# the same 5,120 rows in flight per SM as the 4-warp tile.
LOSS_NARROW = LossConfig(1024, 8, 5)
PRED_PER_THREAD = 8  # elements of the (rows x tasks) prediction tile per thread
PRED_WARPS = 4
GRAD_BLOCK_SMALL, GRAD_BLOCK = 256, 2048  # backward: rows per program (B <= 256, else)
REDUCE_TILE = 2048  # elements of the (programs x columns) tile of the final reduction (4 warps)


def is_narrow(logit_bytes: int, label_bytes: int) -> bool:
    """Half-precision logits with one-byte labels: the large tile uses LOSS_NARROW."""
    return logit_bytes == 2 and label_bytes == 1


def loss_config(batch: int, return_pred: bool, narrow: bool = False) -> LossConfig:
    """The loss kernel's tile and warps for this batch size (K only sets BLOCK_K); narrow: see
    is_narrow."""
    for bound, cfg in LOSS_TABLE_PRED if return_pred else LOSS_TABLE:
        if bound is None or batch <= bound:
            return LOSS_NARROW if narrow and bound is None and not return_pred else cfg
    raise AssertionError("unreachable: the last table entry has no bound")


def loss_grid(batch: int, cfg: LossConfig, num_sms: int) -> int:
    """Programs to launch: one per tile, at most one wave of resident programs (>= 1)."""
    tiles = -(-batch // cfg.block_b)
    return max(1, min(tiles, num_sms * cfg.progs_per_sm))


def block_k(km1: int) -> int:
    return next_pow2(max(km1, 1))


def pred_rows(km1: int, num_warps: int = PRED_WARPS) -> int:
    """Rows of the 2-D prediction tile: PRED_PER_THREAD elements per thread, at least one row."""
    return max(1, PRED_PER_THREAD * 32 * num_warps // block_k(km1))


def reduce_blocks(ncols: int) -> tuple[int, int]:
    """(BLOCK_P, BLOCK_J) of the final reduction: columns in blocks of <= 32."""
    block_j = min(next_pow2(ncols), 32)
    return REDUCE_TILE // block_j, block_j


def grad_block(batch: int) -> tuple[int, int]:
    """(BLOCK, num_warps) of the backward scale kernel."""
    return (GRAD_BLOCK_SMALL, 2) if batch <= GRAD_BLOCK_SMALL else (GRAD_BLOCK, 4)


def resident_programs(regs: int, num_warps: int, shared_bytes: int = 0) -> int:
    """Programs of num_warps warps one sm_90 SM holds at `regs` registers per thread.

    Registers are allocated per warp in units of 256 (regs rounded up to a multiple of 8);
    an SM has 65,536 registers, 64 warps, 32 blocks and 227 KiB of shared memory.
    """
    per_warp = -(-regs * 32 // 256) * 256
    by_regs = 65536 // (per_warp * num_warps)
    by_smem = (227 * 1024) // shared_bytes if shared_bytes else 32
    return min(32, 64 // num_warps, by_regs, by_smem)


# K values whose BLOCK_K the register test compiles: K=2 (KM1=1 becomes a JIT constant), the
# study's K=5, and K=100 (BLOCK_K=128, the largest the tests use). K changes only BLOCK_K (the
# db accumulator and the prediction tile), so the full flag/dtype matrix runs at K=5.
STUDY_KM1 = 4
AUDIT_KM1 = (1, STUDY_KM1, 99)
LOGIT_DTYPES = ("fp32", "bf16", "fp16")
LABEL_DTYPES = ("i64", "i32", "u8")


@dataclass(frozen=True)
class Launch:
    """One compiled variant: kernel name, pointer dtypes, constexprs and warps."""

    kernel: str
    dtypes: dict
    constexprs: dict
    num_warps: int
    km1: int

    def label(self) -> str:
        flags = ",".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in self.constexprs.items() if k != "FAST")
        types = "/".join(self.dtypes.values())
        return f"{self.kernel}[{types}] KM1={self.km1} {flags} warps={self.num_warps}"


def _loss(cfg: LossConfig, km1: int, has_w: bool, grad: bool, pred: bool, g: str = "fp32", lab: str = "i64") -> Launch:
    return Launch(
        "loss", {"g": g, "labels": lab},
        dict(HAS_W=has_w, COMPUTE_GRAD=grad, RETURN_PRED=pred, BLOCK_B=cfg.block_b, BLOCK_K=block_k(km1),
             PRED_ROWS=min(pred_rows(km1, cfg.num_warps), cfg.block_b), FAST=True),
        cfg.num_warps, km1,
    )  # fmt: skip


def shipped() -> list[Launch]:
    """Every (kernel, configuration) class the launchers in triton_ops produce, for the audit.

    Loss: every table entry x (weights, gradients, predictions) at K=5 with fp32 logits and
    int64 labels; every logit x label dtype at the largest tile; the heaviest flags at K=2 and
    K=100. Predict, backward and reduce: every entry at every dtype they take.
    """
    out: list[Launch] = []
    for table, pred in ((LOSS_TABLE, False), (LOSS_TABLE_PRED, True)):
        for _, cfg in table:
            for has_w in (False, True):
                for grad in (False, True):
                    out.append(_loss(cfg, STUDY_KM1, has_w, grad, pred))
            for km1 in AUDIT_KM1:
                if km1 != STUDY_KM1:
                    out.append(_loss(cfg, km1, True, True, pred))
    size = {"fp32": 4, "bf16": 2, "fp16": 2, "i64": 8, "i32": 4, "u8": 1}
    for g in LOGIT_DTYPES:
        for lab in LABEL_DTYPES:
            if (g, lab) != ("fp32", "i64"):
                big = loss_config(1 << 24, False, is_narrow(size[g], size[lab]))
                out.append(_loss(big, STUDY_KM1, True, True, False, g, lab))
    for km1 in AUDIT_KM1:
        for g in LOGIT_DTYPES if km1 == STUDY_KM1 else ("fp32",):
            out.append(Launch("predict", {"g": g}, dict(ROWS=pred_rows(km1), BLOCK_K=block_k(km1), FAST=True),
                              PRED_WARPS, km1))  # fmt: skip
        block_p, block_j = reduce_blocks(km1 + 1)
        out.append(Launch("reduce", {}, dict(BLOCK_P=block_p, BLOCK_J=block_j), 4, km1))
    for g in LOGIT_DTYPES:
        for batch in (GRAD_BLOCK_SMALL, GRAD_BLOCK + 1):
            block, warps = grad_block(batch)
            out.append(Launch("grad_scale", {"grad_g": g}, dict(BLOCK=block, BLOCK_K=block_k(STUDY_KM1)), warps,
                              STUDY_KM1))  # fmt: skip
    return out
