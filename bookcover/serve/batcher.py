"""Dynamic batching: requests that arrive together become one ONNX Runtime call.

A request is *admitted* first (a ticket), before its body is read or decoded; at most
``max_queue`` admitted requests wait for the model at any time, so memory is bounded and an
overloaded server answers 503 at once instead of queueing without end. A decoded request is
*submitted*; the batching loop takes up to ``max_batch`` covers and runs them in one call on a
single model thread. It waits at most ``max_delay`` for more, and only while more covers are
on their way (admitted requests still decoding): a lone request is never held back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The bounded queue is full: answer 503 with Retry-After."""


class Ticket:
    """One admitted request's place in the queue; released when its covers enter a batch or it
    gives up (a bad upload, a client gone). Releasing twice is harmless."""

    def __init__(self, batcher: Batcher):
        self._batcher = batcher
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._batcher._admitted -= 1
            self._batcher._depth_changed()


@dataclass
class _Item:
    pixels: np.ndarray
    ticket: Ticket
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]


class Batcher:
    """Collects submitted pixel batches and runs them through ``run`` on ``executor``."""

    def __init__(self, run: Callable[[np.ndarray], dict[str, np.ndarray]], executor: Executor, max_batch: int,
                 max_delay_s: float, max_queue: int, on_depth: Callable[[int], None] | None = None):
        self.run, self.executor = run, executor
        self.max_batch, self.max_delay, self.max_queue = max_batch, max_delay_s, max_queue
        self.on_depth = on_depth
        self._admitted = 0
        self._items: deque[_Item] = deque()
        self._wake = asyncio.Event()

    @property
    def depth(self) -> int:
        """Requests admitted and not yet in a batch (decoding or queued)."""
        return self._admitted

    def _depth_changed(self) -> None:
        if self.on_depth is not None:
            self.on_depth(self._admitted)
        self._wake.set()

    def admit(self) -> Ticket:
        """A place in the queue, or QueueFull at once."""
        if self._admitted >= self.max_queue:
            raise QueueFull(f"queue full ({self.max_queue} requests waiting)")
        self._admitted += 1
        self._depth_changed()
        return Ticket(self)

    async def submit(self, ticket: Ticket, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Predictions for ``pixels`` (N, crop, crop, 3), run in a batch with whatever else is queued."""
        item = _Item(pixels, ticket, asyncio.get_running_loop().create_future())
        self._items.append(item)
        self._wake.set()
        try:
            return await item.future
        finally:
            ticket.release()

    def _queued_covers(self) -> int:
        return sum(len(i.pixels) for i in self._items)

    def _take(self) -> list[_Item]:
        """Items up to max_batch covers (always at least one: a larger request goes alone, and
        ``run`` splits it)."""
        batch, n = [], 0
        while self._items and (not batch or n + len(self._items[0].pixels) <= self.max_batch):
            item = self._items.popleft()
            if item.future.done():  # the client went away
                item.ticket.release()
                continue
            batch.append(item)
            n += len(item.pixels)
        return batch

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            deadline = loop.time() + self.max_delay
            # Wait for covers still decoding, while the batch has room and time remains.
            while self._queued_covers() < self.max_batch and self._admitted > len(self._items):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            for item in batch:
                item.ticket.release()
            pixels = batch[0].pixels if len(batch) == 1 else np.concatenate([i.pixels for i in batch])
            try:
                out = await loop.run_in_executor(self.executor, self.run, pixels)
            except Exception as exc:  # reported to each waiting request, never kills the loop
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in batch:
                n = len(item.pixels)
                if not item.future.done():
                    item.future.set_result({k: v[start : start + n] for k, v in out.items()})
                start += n
