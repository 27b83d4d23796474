"""JSON error responses shared by the routes: one clear message, never a traceback."""

from __future__ import annotations

from fastapi.responses import JSONResponse

RETRY_AFTER_S = 1


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def busy(message: str) -> JSONResponse:
    """503 with Retry-After: the queue is full; the client should come back shortly."""
    return JSONResponse({"error": f"server busy: {message}; retry after {RETRY_AFTER_S} s"}, status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def unknown_model(name: str, served: str) -> JSONResponse:
    return error(404, f"unknown model {name!r}; this server serves {served!r}")
