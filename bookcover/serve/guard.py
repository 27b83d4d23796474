"""Around every request: the body limit (413), metrics, and one-line errors.

A pure ASGI middleware, outside FastAPI's own handlers: it sees the body as it streams in, so
an oversized upload is refused from its Content-Length (or once the streamed bytes pass the
limit) without being held in memory; and an unexpected exception becomes a JSON 500 and one
log line, with the traceback only at debug level, never in the response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.requests import ClientDisconnect

from bookcover.serve.metrics import Metrics, endpoint_label

log = logging.getLogger("bookcover.serve")


class BodyTooLarge(Exception):
    pass


# Before a 413: read and drop at most this much more of the body, for at most this long. A client
# still sending when the server closes gets a TCP reset, often before it reads the 413; draining a
# bounded rest first (as nginx's lingering close does) lets it read the answer.
DRAIN_FACTOR, DRAIN_MIN_BYTES, DRAIN_SECONDS = 4, 8_000_000, 5.0


async def drain_body(receive, budget: int, seconds: float = DRAIN_SECONDS) -> None:
    """Read and discard the rest of a request body, bounded in bytes and time."""
    deadline = time.monotonic() + seconds
    while budget > 0 and (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(receive(), left)
        except (asyncio.TimeoutError, OSError):
            return
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def json_body(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None):
    """(start message, body message) of a JSON response, for code below the framework."""
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return ({"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, metrics: Metrics, max_body_bytes: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state = {"status": 500, "started": False, "seen": 0, "body_done": False}
        endpoint = endpoint_label(scope["path"])

        async def send_tracked(message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                state["body_done"] = not message.get("more_body", False)
                if state["seen"] > self.max_body:
                    raise BodyTooLarge
            return message

        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                raise BodyTooLarge
            await self.app(scope, receive_limited, send_tracked)
        except BodyTooLarge:
            if not state["body_done"]:  # before answering: uvicorn stops reading once a response is complete
                await drain_body(receive, max(DRAIN_FACTOR * self.max_body, DRAIN_MIN_BYTES))
            await self._answer(send_tracked, state, 413, {
                "error": f"request body over the limit of {self.max_body / 1e6:g} MB (--max-body-mb)"})
        except ClientDisconnect:
            state["status"] = 499  # nginx's "client closed request": nobody is left to answer
        except Exception as exc:  # anything unexpected: one line in the log, no traceback to the client
            log.error("%s %s failed: %s: %s", scope.get("method"), scope["path"], type(exc).__name__,
                      (str(exc).splitlines() or [""])[0][:200])
            log.debug("traceback", exc_info=True)
            await self._answer(send_tracked, state, 500, {"error": "internal error; the server keeps serving"})
        finally:
            self.metrics.observe(endpoint, state["status"], time.perf_counter() - t0)

    @staticmethod
    async def _answer(send, state: dict, status: int, payload: dict) -> None:
        if state["started"]:
            return
        start, body = json_body(status, payload, {"connection": "close"} if status == 413 else None)
        try:
            await send(start)
            await send(body)
        except Exception:  # the client is gone
            log.debug("could not send %s", status, exc_info=True)
