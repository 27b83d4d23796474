"""Run the service: load and verify, bind, serve with uvicorn, stop cleanly on a signal.

SIGTERM (what an orchestrator sends) stops accepting connections, answers every request
already accepted, and exits 0. Ctrl-C does the same and prints one line (exit 130). uvicorn
re-raises a caught signal after its shutdown, which would turn a clean SIGTERM into a kill by
signal; :class:`_Server` records the signal instead, so the exit code says what happened.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from bookcover.errors import Interrupted, UsageError
from bookcover.serve.app import ServeOptions, ServeState, create_app
from bookcover.serve.model import ServedModel


@dataclass
class ServeConfig:
    artifact: Path
    expect_sha256: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 32
    max_delay_ms: float = 2.0
    max_queue: int = 256
    max_body_mb: float = 20.0
    threads: int | None = None
    checkpoint: Path | None = None
    explain_samples: int = 1000
    log_level: str = "warning"


def _server_class():
    class _Server(uvicorn.Server):
        stopped_by: int | None = None

        def handle_exit(self, sig, frame) -> None:  # as uvicorn's, without queueing the signal to re-raise
            if self.stopped_by is None:
                self.stopped_by = sig
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return _Server


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before serving so that --port 0 can say which port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class OneLine(logging.Filter):
    """Below debug level, a record's traceback becomes one line (its exception type and message),
    whoever logged it: uvicorn logs escaped exceptions with their traceback."""

    def __init__(self, debug: bool = False):
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not self.debug:
            exc = record.exc_info[1]
            if exc is not None:
                first = (str(exc).splitlines() or [""])[0][:200]
                record.msg = f"{record.getMessage()}: {type(exc).__name__}: {first}"
                record.args = None
            record.exc_info = record.exc_text = None
        return True


def logging_config(level: str) -> dict:
    """uvicorn's loggers and ours on stderr, one line per record; tracebacks only at debug."""
    fmt = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr",
               "filters": ["one_line"]}
    loggers = {name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
               for name in ("uvicorn", "uvicorn.error", "bookcover.serve")}
    loggers["uvicorn.access"] = {"handlers": ["stderr"], "level": "INFO" if level in ("info", "debug") else "WARNING",
                                 "propagate": False}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {"plain": fmt},
            "filters": {"one_line": {"()": OneLine, "debug": level == "debug"}}, "handlers": {"stderr": handler}, "loggers": loggers}


def serve(config: ServeConfig, announce=print) -> None:
    """Serve until a signal. Bad artifact, pin, checkpoint or address: one-line error (exit 2)."""
    threads = config.threads or os.cpu_count() or 1
    model = ServedModel.load(config.artifact, config.expect_sha256, threads=threads)
    explainer = None
    if config.checkpoint is not None:
        from bookcover.serve.explain import Explainer

        explainer = Explainer(config.checkpoint, model.artifact.metadata.get("bookcover.checkpoint_sha256"),
                              samples=config.explain_samples)
    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    options = ServeOptions(max_batch=config.max_batch, max_delay_ms=config.max_delay_ms, max_queue=config.max_queue,
                           max_body_mb=config.max_body_mb)
    state = ServeState(model, options, explainer)
    app = create_app(state)
    uv = uvicorn.Config(app, log_config=logging_config(config.log_level), log_level=config.log_level,
                        access_log=config.log_level in ("info", "debug"), lifespan="on",
                        timeout_graceful_shutdown=None, server_header=False)
    server = _server_class()(uv)
    where = f"[{host}]" if ":" in host else host
    announce(f"serving {config.artifact} (sha256 {model.sha256[:16]}..., {', '.join(model.providers)}, "
             f"{threads} threads{', explain on' if explainer else ''}) on http://{where}:{port}")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if server.stopped_by == signal.SIGINT:
        raise Interrupted("interrupted; the server stopped after answering the requests it had accepted")
    logging.getLogger("bookcover.serve").info("stopped (signal %s)", server.stopped_by)
