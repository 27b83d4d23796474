"""Torch and ONNX adapters agree; the lime classifier_fn makes one device call per batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bookcover.errors import BookcoverError, CheckpointError
from bookcover.explain.adapters import OnnxModel, lime_classifier_fn, load_model, predict_chunked, predict_pixels
from bookcover.explain.explainer import ExplainOptions, explain_image
from bookcover.export import write_manifest
from tests.explain.helpers import CROP, SIZE, cover, export_tiny_onnx, tiny_model


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    return export_tiny_onnx(tmp_path_factory.mktemp("artifact"))


def test_onnx_adapter_reads_the_contract_and_agrees_with_torch(onnx_artifact):
    om, tm = OnnxModel(onnx_artifact), tiny_model()
    assert (om.image_size, om.crop, om.num_levels) == ((SIZE, SIZE), CROP, 5)
    pixels = torch.from_numpy(np.stack([cover(seed=s) for s in range(4)]))
    a, b = predict_pixels(om, pixels), predict_pixels(tm, pixels)
    for k in ("probas", "level_probs"):
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5)


def test_explanations_agree_between_onnx_and_torch(onnx_artifact):
    opts = ExplainOptions(samples=200, seed=4)
    a = explain_image(OnnxModel(onnx_artifact), cover(), opts)
    b = explain_image(tiny_model(), cover(), opts)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-4)
    assert a.ranked()[:5] == b.ranked()[:5]


def test_bad_artifacts_and_sources_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no model.onnx"):
        OnnxModel(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="no manifest.json"):
        OnnxModel(tmp_path)
    write_manifest(tmp_path)
    with pytest.raises(CheckpointError, match="cannot load"):
        OnnxModel(tmp_path)
    with pytest.raises(BookcoverError, match="exactly one"):
        load_model(None, None)


def test_lime_classifier_fn_one_call_probabilities():
    model = tiny_model()
    calls = []
    original = model.run
    model.run = lambda x: calls.append(x.shape[0]) or original(x)
    images = np.stack([cover(seed=s) for s in range(30)])
    probs = lime_classifier_fn(model)(images)
    assert probs.shape == (30, 5) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert calls == [30]


def test_chunking_splits_calls_and_keeps_order():
    model = tiny_model()
    pixels = torch.from_numpy(np.stack([cover(seed=s) for s in range(7)]))
    whole = predict_pixels(model, pixels, batch=7)
    calls = []
    original = model.run
    model.run = lambda x: calls.append(x.shape[0]) or original(x)
    parts = predict_pixels(model, pixels, batch=3)
    assert calls == [3, 3, 1]
    torch.testing.assert_close(parts["probas"], whole["probas"], atol=1e-6, rtol=0)
    assert predict_chunked(model, 0, lambda a, b: pixels[a:b])["probas"].shape[0] == 0
