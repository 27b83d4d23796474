"""A bounded queue: under a burst, every request gets 200 or 503 (with Retry-After), never a hang."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serve.harness import running


def test_64_concurrent_requests_get_200_or_503(served, real_covers):
    covers = [p.read_bytes() for p in real_covers[:8]]
    with running(served, "--max-queue", "4", "--max-batch", "2") as server:
        def one(j: int) -> tuple[int, str | None]:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                r = c.post("/v1/covers:predict", files=[("file", (f"{j}.jpg", covers[j % 8], "image/jpeg"))])
                return r.status_code, r.headers.get("retry-after")

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(one, range(64), timeout=120))
        with httpx.Client(base_url=server.url, timeout=10) as c:
            depth = [line for line in c.get("/metrics").text.splitlines() if line.startswith("bookcover_queue_depth")]
    statuses = [s for s, _ in answers]
    assert len(statuses) == 64
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses
    assert all(retry == "1" for s, retry in answers if s == 503)
    assert depth == ["bookcover_queue_depth 0.0"]  # everything admitted was answered
    assert "Traceback" not in server.log
