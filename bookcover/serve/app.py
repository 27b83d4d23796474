"""Wiring: the served model, its batcher, thread pools and metrics in one FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import FastAPI

from bookcover.serve.batcher import Batcher
from bookcover.serve.guard import Guard
from bookcover.serve.metrics import Metrics
from bookcover.serve.model import ServedModel

log = logging.getLogger("bookcover.serve")


@dataclass
class ServeOptions:
    max_batch: int = 32
    max_delay_ms: float = 2.0
    max_queue: int = 256
    max_body_mb: float = 20.0
    decode_workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))


class ServeState:
    """What the routes share. Created before the event loop runs; started by the app's lifespan."""

    def __init__(self, model: ServedModel, options: ServeOptions, explainer=None):
        self.model, self.options, self.explainer = model, options, explainer
        self.metrics = Metrics()
        self.ready = False
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="bookcover-model")
        self.decode_pool = ThreadPoolExecutor(options.decode_workers, thread_name_prefix="bookcover-decode")
        self.explain_thread = ThreadPoolExecutor(1, thread_name_prefix="bookcover-explain")
        self.explains_waiting = 0
        self.batcher: Batcher | None = None

    def start(self) -> asyncio.Task:
        self.batcher = Batcher(self._run_model, self.model_thread, self.options.max_batch,
                               self.options.max_delay_ms / 1000.0, self.options.max_queue,
                               on_depth=self.metrics.queue_depth.set)
        return asyncio.get_running_loop().create_task(self._run())

    def _run_model(self, pixels):
        """On the model thread: ONNX Runtime calls of at most max_batch covers (a request with
        more covers than that is split), each one counted in the batch-size histogram."""
        size = self.options.max_batch
        for start in range(0, len(pixels), size):
            self.metrics.batch_size.observe(min(size, len(pixels) - start))
        self.metrics.covers.inc(len(pixels))
        return self.model.run(pixels, size)

    async def _run(self) -> None:
        # Warm the session before saying ready; requests that come earlier simply queue.
        await asyncio.get_running_loop().run_in_executor(self.model_thread, self.model.warm, self.options.max_batch)
        self.ready = True
        await self.batcher.run_forever()

    def close(self) -> None:
        for pool in (self.model_thread, self.decode_pool, self.explain_thread):
            pool.shutdown(wait=True, cancel_futures=True)


def create_app(state: ServeState) -> FastAPI:
    from bookcover.serve.routes import router
    from bookcover.serve.v2_routes import router as v2_router

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        task = state.start()
        try:
            yield
        finally:  # uvicorn calls this after every accepted request was answered
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            state.close()

    app = FastAPI(title="bookcover-fast", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.serve = state
    app.include_router(v2_router)
    app.include_router(router)
    app.add_middleware(Guard, metrics=state.metrics, max_body_bytes=int(state.options.max_body_mb * 1e6))
    return app
