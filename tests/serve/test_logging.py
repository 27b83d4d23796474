"""No traceback in the server's log except at debug level, whoever logs it (uvicorn included)."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest


@pytest.mark.parametrize("level,traceback", [("warning", False), ("debug", True)])
def test_tracebacks_only_at_debug(level, traceback):
    from bookcover.serve.server import logging_config

    config = logging_config(level)
    logging.config.dictConfig(config)
    logger = logging.getLogger("uvicorn.error")
    stream = io.StringIO()
    logger.handlers[0].setStream(stream)
    try:
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            logger.error("Exception in ASGI application", exc_info=True)
        text = stream.getvalue()
    finally:  # leave the test process's logging as it was
        for name in config["loggers"]:
            named = logging.getLogger(name)
            named.handlers.clear()
            named.propagate, named.level = True, logging.NOTSET
    assert ("Traceback" in text) is traceback
    if not traceback:
        assert text.strip().endswith("Exception in ASGI application: RuntimeError: boom")
        assert len(text.strip().splitlines()) == 1
