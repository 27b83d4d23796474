"""The Ray engine: Ray Data reads the path list, decodes in tasks, scores in a pool of
onnxruntime actors and writes Parquet shards through a datasink.

1. ``ray.data.from_items`` of the paths still to score;
2. ``map_batches(DecodeBatch)``, an autoscaling actor pool: the consumer's decoding and preprocessing (rows.decode_batch);
3. ``map_batches(ScoreActor, compute=ActorPoolStrategy(size=workers))`` (Ray 2.51 deprecated
   ``concurrency=`` for this): one verified onnxruntime session per actor,
   ``threads`` intra-op threads each, one GPU each when the cluster has GPUs and onnxruntime CUDA;
4. ``write_datasink(ShardSink)``: each write task publishes one shard by a rename (shards.py).

``address`` joins a running cluster (``auto``, ``ray://HOST:10001``); the covers and OUT must then
be on a file system every node sees. Without it a local instance starts and stops with the job.
If Ray is already initialised in this process (tests), that instance is used and left running.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

from bookcover.errors import BookcoverError, UsageError
from bookcover.score.artifact import ArtifactRef
from bookcover.score.rows import decode_batch, rows_table, score_batch
from bookcover.score.shards import shard_name, write_shard

WRITE_CPUS = 0.1


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs Ray Data: pip install 'bookcover-fast[ray]'") from None
    return ray


class DecodeBatch:
    """Ray Data UDF: {"path"} -> {"path", "pixels", "error"} ("" when the cover decoded)."""

    def __init__(self, resize: Sequence[int], crop: int):
        self.resize, self.crop = [int(v) for v in resize], int(crop)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        paths = [str(p) for p in batch["path"]]
        pixels, errors = decode_batch(paths, self.resize, self.crop)
        return {"path": np.asarray(paths, dtype=object), "pixels": pixels,
                "error": np.asarray([e or "" for e in errors], dtype=object)}


class ScoreActor:
    """One verified onnxruntime session per actor; batches of pixels -> rows (a pyarrow Table)."""

    def __init__(self, ref: ArtifactRef, threads: int, use_gpu: bool):
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_gpu else ["CPUExecutionProvider"]
        self.art = ref.open(threads=threads, providers=providers)
        self.sha = ref.model_sha256()

    def __call__(self, batch: dict[str, Any]):
        paths = [str(p) for p in batch["path"]]
        errors = [str(e) or None for e in batch["error"]]
        return rows_table(score_batch(self.art, paths, batch["pixels"], errors, self.sha))


def shard_sink(out: str, tag: str, shard_rows: int):
    """A ray.data.Datasink whose write tasks each publish one shard of at least ``shard_rows`` rows."""
    import pyarrow as pa
    from ray.data import Datasink

    class ShardSink(Datasink):
        rows_written = 0

        def on_write_complete(self, write_result) -> None:  # on the driver, once every shard is published
            self.rows_written = int(sum(write_result.write_returns))

        def write(self, blocks, ctx) -> int:
            tables = [pa.table(b) if not isinstance(b, pa.Table) else b for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return 0
            table = pa.concat_tables(tables)
            write_shard(out, shard_name(tag, ctx.task_idx), table)
            return table.num_rows

        @property
        def min_rows_per_write(self) -> int:
            return shard_rows

    return ShardSink()


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:240]


def cuda_available(ray: Any) -> bool:
    """GPUs in the cluster and a CUDA build of onnxruntime here (onnxruntime-gpu)."""
    import onnxruntime as ort

    return ray.cluster_resources().get("GPU", 0) > 0 and "CUDAExecutionProvider" in ort.get_available_providers()


def run_ray(ref: ArtifactRef, paths: Sequence[str], out: str, tag: str, *, spec: dict[str, Any], batch_size: int = 64,
            workers: int = 1, threads: int | None = None, shard_rows: int = 4096, address: str | None = None,
            quiet: bool = False, init_options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """Score ``paths`` into shards of OUT; returns (rows written, what ran: actors, threads, GPUs)."""
    ray = import_ray()
    # Ray Data's own context warns about its own deprecated fields on every run: not the user's to fix.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
    # ... and that a small job has fewer blocks to write than the 2 write tasks allowed.
    warnings.filterwarnings("ignore", message=r"The maximum number of concurrent tasks for 'Write'", category=UserWarning)
    started = False
    if not ray.is_initialized():
        options = {"include_dashboard": False, "logging_level": "warning", "log_to_driver": not quiet}
        if address:
            options["address"] = address
        options.update(init_options or {})
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise UsageError(f"cannot start or join {where} ({_first_line(exc)})") from None
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = not quiet
        context.print_on_execution_start = not quiet
        if quiet:
            logging.getLogger("ray.data").setLevel(logging.ERROR)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        use_gpu = cuda_available(ray)
        node_cpus = max([int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n.get("Alive")] or [cpus])
        threads = threads or max(1, min(node_cpus, cpus // max(workers, 1)))  # an actor lives on one node
        # Actors hold `threads` CPUs, but always leave one to the decode tasks (logical CPUs:
        # onnxruntime's threads are what actually run).
        actor_cpus = 1.0 if use_gpu else max(0.1, min(float(threads), (cpus - 1) / workers))
        resize, crop = [int(v) for v in spec["resize"]], int(spec["crop"])
        ds = ray.data.from_items([{"path": p} for p in paths],
                                 override_num_blocks=max(1, -(-len(paths) // batch_size)))  # a batch per block: streams
        # Decoding is its own autoscaling pool on the CPUs the model actors leave, one CPU each;
        # as an actor pool it is never fused into the model actors, where it would run in turn
        # with the model instead of beside it.
        decoders = max(1, int(cpus - actor_cpus * workers))
        ds = ds.map_batches(DecodeBatch, fn_constructor_kwargs={"resize": resize, "crop": crop}, batch_size=batch_size,
                            batch_format="numpy", compute=ray.data.ActorPoolStrategy(min_size=1, max_size=decoders),
                            num_cpus=1)
        ds = ds.map_batches(ScoreActor, fn_constructor_kwargs={"ref": ref, "threads": threads, "use_gpu": use_gpu},
                            batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                            num_cpus=actor_cpus, num_gpus=1 if use_gpu else 0)
        sink = shard_sink(out, tag, shard_rows)
        # Writing is light: a small CPU share, so it never waits behind the actors, and few
        # concurrent tasks, so it reuses a couple of worker processes instead of starting many.
        try:
            ds.write_datasink(sink, ray_remote_args={"num_cpus": WRITE_CPUS}, concurrency=2)
        except ray.exceptions.RayError as exc:  # an actor or task failed: one line; the shards written stay
            raise BookcoverError(f"the Ray job failed ({_first_line(exc)}); the shards written are complete: "
                                 "fix the cause and continue with --resume") from None
        return sink.rows_written, {"actors": workers, "threads_per_actor": threads, "gpus_per_actor": 1 if use_gpu else 0,
                         "cluster_cpus": cpus}
    finally:
        if started:
            ray.shutdown()
