"""The local engine: a decode pool feeding batches to one onnxruntime session. No Ray import.

Decoding runs a few batches ahead of the model in a pool (threads by default: Pillow releases the
GIL while it decodes and resizes; processes are there to compare, bench/score_speed.py measures
both). The session uses ``threads`` intra-op threads, set explicitly. Rows are buffered and
published a shard at a time; Ctrl-C publishes the rows already scored before it stops.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from bookcover.score.artifact import ArtifactRef
from bookcover.score.rows import decode_batch, rows_table, score_batch
from bookcover.score.shards import shard_name, write_shard


def default_threads() -> int:
    return os.cpu_count() or 1


def make_pool(kind: str, workers: int) -> Executor:
    if kind == "threads":
        return ThreadPoolExecutor(max_workers=workers)
    if kind == "processes":  # forkserver: never fork a process that holds onnxruntime's threads
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
    raise ValueError(f"decode pool must be threads or processes, not {kind!r}")


def run_local(ref: ArtifactRef, paths: Sequence[str], out: str, tag: str, *, batch_size: int = 64,
              workers: int | None = None, threads: int | None = None, shard_rows: int = 4096,
              pool: str = "threads", on_rows: Callable[[int], None] | None = None, artifact: Any = None) -> int:
    """Score ``paths`` into shards of OUT named after ``tag``; returns the rows written."""
    art = artifact or ref.open(threads=threads or default_threads())
    spec = art.input_spec
    resize, crop = [int(v) for v in spec["resize"]], int(spec["crop"])
    sha = ref.model_sha256()
    workers = workers or default_threads()
    batches = [list(paths[a : a + batch_size]) for a in range(0, len(paths), batch_size)]
    buffered: list[dict[str, Any]] = []
    written = shards = 0

    def publish() -> None:
        nonlocal written, shards, buffered
        if buffered:
            write_shard(out, shard_name(tag, shards), rows_table(buffered))
            written, shards, buffered = written + len(buffered), shards + 1, []

    def consume(item: tuple[list[str], Any]) -> None:
        nonlocal buffered
        batch, future = item
        pixels, errors = future.result()
        buffered += score_batch(art, batch, pixels, errors, sha)
        if len(buffered) >= shard_rows:
            publish()
        if on_rows is not None:
            on_rows(len(batch))

    executor = make_pool(pool, workers)
    try:
        pending: deque = deque()
        ahead = workers + 1  # batches in flight: every worker busy, one more ready for the model
        try:
            for batch in batches:
                pending.append((batch, executor.submit(decode_batch, batch, resize, crop)))
                if len(pending) > ahead:
                    consume(pending.popleft())
            while pending:
                consume(pending.popleft())
        finally:
            publish()  # what is scored is kept, also on Ctrl-C
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return written

