"""Each bad input gets one clear JSON error with its status, and the server keeps serving."""

from __future__ import annotations

import io
import socket

import httpx
import pytest
from PIL import Image

from tests.serve.harness import running


@pytest.fixture(scope="module")
def server(served):
    with running(served, "--max-body-mb", "1") as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def good(client, real_covers):
    """After each case: the server still answers a good request."""
    yield
    r = client.post("/v1/covers:predict", files=[("file", ("ok.jpg", real_covers[0].read_bytes(), "image/jpeg"))])
    assert r.status_code == 200 and "level" in r.json()["predictions"][0]


def bomb_png() -> bytes:
    """48 megapixels of one grey: about 50 kB as PNG, over the consumer's 40 MP cap."""
    buf = io.BytesIO()
    Image.new("L", (8000, 6000), 128).save(buf, format="PNG")
    return buf.getvalue()


def upload(client, name: str, data: bytes) -> httpx.Response:
    return client.post("/v1/covers:predict", files=[("file", (name, data, "application/octet-stream"))])


@pytest.mark.parametrize("name,make,reason", [
    ("empty.jpg", lambda cover: b"", "empty file"),
    ("notes.txt", lambda cover: b"this is not an image\n" * 20, "not an image"),
    ("truncated.jpg", lambda cover: cover[: len(cover) // 2], "truncated"),
    ("bomb.png", lambda cover: bomb_png(), "too large"),
])
def test_unreadable_cover_is_422_with_the_reason(client, good, real_covers, name, make, reason):
    r = upload(client, name, make(real_covers[1].read_bytes()))
    assert r.status_code == 422, r.text
    body = r.json()
    assert reason in body["error"] and name in body["error"]
    assert body["predictions"] == [{"path": name, "error": body["predictions"][0]["error"]}]
    assert reason in body["predictions"][0]["error"]


def test_bad_cover_beside_good_ones_is_reported_and_the_rest_answered(client, good, real_covers):
    files = [("file", ("a.jpg", real_covers[2].read_bytes(), "image/jpeg")), ("file", ("b.jpg", b"", "image/jpeg"))]
    r = client.post("/v1/covers:predict", files=files)
    assert r.status_code == 200
    a, b = r.json()["predictions"]
    assert a["path"] == "a.jpg" and isinstance(a["level"], int)
    assert b == {"path": "b.jpg", "error": "empty file"}


def test_body_over_the_limit_is_413(client, good):
    r = upload(client, "big.jpg", b"\xff" * 1_500_000)
    assert r.status_code == 413 and "--max-body-mb" in r.json()["error"]


def test_streamed_body_over_the_limit_is_413(client, good):
    """Chunked, with no Content-Length: refused once the bytes received pass the limit."""
    def chunks():
        for _ in range(24):
            yield b"\xff" * 100_000

    r = client.post("/v2/models/bookcover/infer", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_no_files_is_400(client, good):
    assert client.post("/v1/covers:predict", data={"x": "1"}).status_code == 400
    assert client.post("/v1/covers:predict", content=b"{}", headers={"content-type": "application/json"}).status_code == 400


def v2(shape, datatype="UINT8", data=None):
    n = 1
    for d in shape:
        n *= d
    return {"inputs": [{"name": "pixels", "datatype": datatype, "shape": shape, "data": data or [0] * n}]}


@pytest.mark.parametrize("body", [
    v2([1, 32, 32, 3], "FP32"),
    v2([1, 16, 16, 3]),
    v2([32, 32, 3]),
    v2([1, 32, 32, 3], data=[0] * 10),
    v2([1, 32, 32, 3], data=[300] * (32 * 32 * 3)),
    {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1], "data": [0]}]},
    {"no": "inputs"},
], ids=["datatype", "crop", "rank", "count", "range", "name", "form"])
def test_bad_v2_tensor_is_400(client, good, server, body):
    crop = client.get("/v2/models/bookcover").json()["inputs"][0]["shape"][1]
    assert crop == 32  # the cases above are written for the tiny model's crop
    r = client.post("/v2/models/bookcover/infer", json=body)
    assert r.status_code == 400 and r.json()["error"]


def test_explain_without_checkpoint_is_404(client, good, real_covers):
    r = client.post("/v1/covers:explain", files=[("file", ("a.jpg", real_covers[0].read_bytes(), "image/jpeg"))])
    assert r.status_code == 404 and "--checkpoint" in r.json()["error"]


def test_unknown_model_is_404(client, good):
    for r in (client.post("/v2/models/other/infer", json=v2([1, 32, 32, 3])), client.get("/v2/models/other")):
        assert r.status_code == 404 and "other" in r.json()["error"]


def test_client_that_disconnects_mid_upload(server, client, good, real_covers):
    host, port = server.url.removeprefix("http://").split(":")
    cover = real_covers[3].read_bytes()
    head = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/covers:predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                  + f"Content-Length: {len(head) + len(cover) + 8}\r\n\r\n".encode() + head + cover[: len(cover) // 3])
    # the connection is gone with the body two thirds short; `good` checks the server still answers


def test_no_traceback_in_the_log(server, client, good):
    assert client.get("/v2/health/live").status_code == 200
    assert "Traceback" not in server.log, server.log
