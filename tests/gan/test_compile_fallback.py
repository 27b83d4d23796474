"""The GAN's first compiled step falls back to eager only on compile errors (issue 18, item 7):
an out-of-memory error, bare or wrapped by the compiler, and any other error propagate as themselves."""

from __future__ import annotations

import pytest
import torch
from torch._dynamo.exc import TorchDynamoException

from bookcover.gan.train import first_step_or_eager


def _pair():
    model = torch.nn.Linear(2, 2)
    return (model,), (torch.optim.SGD(model.parameters(), lr=0.1),)


def _raising(exc: BaseException):
    def step():
        raise exc
    return step


def test_a_compile_error_falls_back_to_eager_with_one_warning(capsys):
    models, optimizers = _pair()
    assert first_step_or_eager(models, optimizers, _raising(TorchDynamoException("lowering failed\nmore")),
                               lambda: "eager") == ("eager", False)
    assert capsys.readouterr().err.splitlines() == [
        "warning: torch.compile failed at the first GAN step (TorchDynamoException: lowering failed); "
        "continuing in eager mode"]


def test_out_of_memory_is_not_taken_for_a_compile_error():
    models, optimizers = _pair()
    with pytest.raises(torch.OutOfMemoryError):
        first_step_or_eager(models, optimizers, _raising(torch.OutOfMemoryError("CUDA out of memory")), lambda: 0)
    wrapped = TorchDynamoException("backend failed")
    wrapped.__cause__ = torch.OutOfMemoryError("CUDA out of memory while autotuning")
    with pytest.raises(torch.OutOfMemoryError, match="autotuning"):
        first_step_or_eager(models, optimizers, _raising(wrapped), lambda: 0)


def test_any_other_error_propagates():
    models, optimizers = _pair()
    with pytest.raises(ValueError, match="a bug"):
        first_step_or_eager(models, optimizers, _raising(ValueError("a bug")), lambda: 0)
