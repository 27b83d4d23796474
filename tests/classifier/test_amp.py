"""Which autocast dtype training picks: bf16 on CUDA, on CPU only where it measurably helps."""

import pytest
import torch

from bookcover.classifier import train as classifier
from bookcover.errors import BookcoverError


def test_cuda_defaults_to_bf16():
    assert classifier.resolve_amp("auto", torch.device("cuda"), 64) is torch.bfloat16


@pytest.mark.parametrize("native,crop,expected", [(True, 120, torch.bfloat16), (True, 64, None), (False, 120, None)])
def test_cpu_auto_needs_native_bf16_and_large_crops(monkeypatch, native, crop, expected):
    monkeypatch.setattr(classifier, "cpu_has_native_bf16", lambda: native)
    assert classifier.resolve_amp("auto", torch.device("cpu"), crop) is expected


def test_explicit_choices_and_bad_names():
    assert classifier.resolve_amp("fp16", torch.device("cpu")) is torch.float16
    assert classifier.resolve_amp("none", torch.device("cuda")) is None
    with pytest.raises(BookcoverError, match="--amp"):
        classifier.resolve_amp("fp8", torch.device("cpu"))
