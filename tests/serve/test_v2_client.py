"""A real Open Inference Protocol client (tritonclient.http) reads the metadata and runs infer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.serve.harness import running


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_metadata_and_infer(served, real_covers, consumer_predictions, binary):
    import tritonclient.http as httpclient

    from bookcover.consumer import load_artifact

    art = load_artifact(served)
    covers = real_covers[:8]
    pixels = np.stack([art.preprocess(p) for p in covers])
    crop = pixels.shape[1]
    with running(served) as server:
        client = httpclient.InferenceServerClient(url=server.url.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("bookcover")
            meta = client.get_model_metadata("bookcover")
            assert meta["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, crop, crop, 3]}]
            assert [o["name"] for o in meta["outputs"]] == ["probas", "level", "level_probs"]
            assert len(meta["sha256"]) == 64
            inp = httpclient.InferInput("pixels", list(pixels.shape), "UINT8")
            inp.set_data_from_numpy(pixels, binary_data=binary)
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("probas", "level")]
            result = client.infer("bookcover", [inp], outputs=outputs)
            level, probas = result.as_numpy("level"), result.as_numpy("probas")
        finally:
            client.close()
    assert level.tolist() == [consumer_predictions[p.name]["level"] for p in covers]
    want = np.asarray([consumer_predictions[p.name]["probas"] for p in covers])
    np.testing.assert_allclose(probas, want, rtol=0, atol=1e-6)
