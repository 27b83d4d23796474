"""The csrc/ fused CORAL op (``torch.ops.bookcover``): loading and fake tensors.

The C++/CUDA kernels register the schema with ``TORCH_LIBRARY``; as in pytorch/extension-cpp,
the fake (meta) implementation lives here in Python, so that ``torch.compile`` and
``torch.library.opcheck`` see the op. The autograd formula is registered in C++ (Autograd key):
a Python ``register_autograd`` costs several times the kernel itself at B=256. The extension is optional: when
``bookcover._C`` was not built, :func:`available` is False: ``impl="auto"`` then runs the
reference (and says so once), and an explicit ``impl="cpp"`` raises (bookcover.coral.dispatch).
"""

from __future__ import annotations

import torch

_LOADED: bool | None = None


def available() -> bool:
    """True when the compiled extension (``bookcover._C``) imports; registers it on first call."""
    global _LOADED
    if _LOADED is None:
        try:
            import bookcover._C  # noqa: F401  (loads the library: TORCH_LIBRARY registrations)
        except ImportError:
            _LOADED = False
        else:
            _register_python_side()
            _LOADED = True
    return _LOADED


def _acc_dtype(logit: torch.Tensor) -> torch.dtype:
    return torch.float64 if logit.dtype == torch.float64 else torch.float32


def _register_python_side() -> None:
    """Fake implementations of the C++ ops (shapes and dtypes only)."""

    @torch.library.register_fake("bookcover::coral_loss_fwd")
    def _(logit, bias, labels, weights, compute_grad, return_predictions):
        acc = _acc_dtype(logit)
        batch, km1 = logit.numel(), bias.numel()
        torch._check(labels.numel() == batch)
        loss = logit.new_empty((), dtype=acc)
        dg = logit.new_empty((batch if compute_grad else 0,), dtype=acc)
        db = logit.new_empty((km1 if compute_grad else 0,), dtype=acc)
        probas = logit.new_empty((batch if return_predictions else 0, km1), dtype=acc)
        rank = logit.new_empty((batch if return_predictions else 0,), dtype=torch.int64)
        return loss, dg, db, probas, rank

    @torch.library.register_fake("bookcover::coral_predict")
    def _(logit, bias):
        batch, km1 = logit.numel(), bias.numel()
        return logit.new_empty((batch, km1), dtype=_acc_dtype(logit)), logit.new_empty((batch,), dtype=torch.int64)
