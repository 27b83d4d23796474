"""SIGTERM under load: every accepted request is answered, and the exit code is 0."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serve.harness import running


def test_sigterm_answers_accepted_requests_and_exits_0(served, real_covers):
    covers = [p.read_bytes() for p in real_covers[:16]]
    sent = threading.Barrier(17)
    with running(served, "--max-batch", "4") as server:
        def one(j: int) -> str:
            files = [("file", (f"{j}-{k}.jpg", covers[(j + k) % 16], "image/jpeg")) for k in range(6)]
            with httpx.Client(base_url=server.url, timeout=60) as c:
                req = c.build_request("POST", "/v1/covers:predict", files=files)
                sent.wait(30)
                try:
                    r = c.send(req)
                except httpx.ConnectError:
                    return "refused"  # not accepted: allowed after SIGTERM
                return str(r.status_code) if r.status_code != 200 or len(r.json()["predictions"]) == 6 else "short"

        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, j) for j in range(16)]
            sent.wait(30)
            time.sleep(0.3)  # the requests are on the wire, most being decoded or queued
            server.proc.send_signal(signal.SIGTERM)
            results = [f.result(timeout=120) for f in futures]
        code = server.stop(timeout=60)
    assert code == 0, server.log
    assert set(results) <= {"200", "refused"}, results
    assert "200" in results
    assert "Traceback" not in server.log


def test_sigint_prints_one_line(served):
    with running(served) as server:
        code = server.stop(signal.SIGINT)
    assert code == 130
    assert server.lines[-1].startswith("interrupted;") and len(server.lines) == 2, server.log
