"""/v1/covers:predict and v2 infer give the consumer's (export/predict.py) answers on real covers."""

from __future__ import annotations

import httpx
import numpy as np

from tests.serve.harness import running


def multipart(paths) -> list:
    return [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def test_predict_and_v2_match_the_consumer(served, real_covers, consumer_predictions):
    from bookcover.consumer import load_artifact

    with running(served) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        got = []
        for a in range(0, len(real_covers), 10):  # several requests, as a client would send them
            r = client.post("/v1/covers:predict", files=multipart(real_covers[a : a + 10]))
            assert r.status_code == 200, r.text
            got += r.json()["predictions"]
        assert [g["path"] for g in got] == [p.name for p in real_covers]
        for g in got:
            want = consumer_predictions[g["path"]]
            assert g["level"] == want["level"], g["path"]
            np.testing.assert_allclose(g["probas"], want["probas"], rtol=0, atol=1e-6)
            np.testing.assert_allclose(g["level_probs"], want["level_probs"], rtol=0, atol=1e-6)
            assert abs(g["expected_level"] - want["expected_level"]) <= 1e-5

        art = load_artifact(served)
        pixels = np.stack([art.preprocess(p) for p in real_covers])
        body = {"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": list(pixels.shape),
                            "data": pixels.ravel().tolist()}]}
        r = client.post("/v2/models/bookcover/infer", json=body)
        assert r.status_code == 200, r.text
        outs = {o["name"]: o for o in r.json()["outputs"]}
        assert set(outs) == {"probas", "level", "level_probs"}
        assert outs["level"]["datatype"] == "INT64" and outs["level"]["shape"] == [len(real_covers)]
        assert outs["level"]["data"] == [consumer_predictions[p.name]["level"] for p in real_covers]
        probas = np.asarray(outs["probas"]["data"]).reshape(outs["probas"]["shape"])
        want = np.asarray([consumer_predictions[p.name]["probas"] for p in real_covers])
        np.testing.assert_allclose(probas, want, rtol=0, atol=1e-6)

        metrics = client.get("/metrics").text
        for name in ("bookcover_requests_total", "bookcover_request_seconds_bucket", "bookcover_batch_size_bucket",
                     "bookcover_queue_depth", "bookcover_covers_predicted_total"):
            assert name in metrics
        assert 'endpoint="/v1/covers:predict",status="200"' in metrics
    assert "Traceback" not in server.log
