"""A score job: check everything, list the covers, skip those already written, run an engine,
write summary.json. The CLI only parses and prints; tests call score_catalogue directly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookcover.errors import Interrupted, UsageError
from bookcover.score.artifact import ArtifactRef, artifact_ref
from bookcover.score.inputs import list_covers
from bookcover.score.outdir import claim_out_dir, record_written
from bookcover.score.shards import read_written, remove_temp_files, run_tag
from bookcover.score.summary import build_summary, write_summary

ENGINES = ("local", "ray")


@dataclass
class ScoreOptions:
    """Everything a job needs besides its inputs and OUT (the CLI's options)."""

    engine: str = "local"
    batch_size: int = 64
    workers: int | None = None  # local: decode workers (default: cores); ray: onnxruntime actors (default 1)
    threads: int | None = None  # onnxruntime intra-op threads (local: cores; ray: cluster CPUs / actors)
    shard_rows: int = 4096
    expect_sha256: str | None = None
    variant: str | None = None
    address: str | None = None
    resume: bool = False
    quiet: bool = False
    decode_pool: str = "threads"  # local engine: threads or processes (bench/score_speed.py compares)
    ray_init: dict[str, Any] = field(default_factory=dict)  # extra ray.init options for a local instance


def score_catalogue(artifact: str | Path, out: str | Path, *, images: str | Path | None = None,
                    manifest: str | Path | None = None, options: ScoreOptions | None = None) -> dict[str, Any]:
    """Score every cover of ``images`` or ``manifest`` into OUT; returns the summary it wrote."""
    opts = options or ScoreOptions()
    if opts.engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, not {opts.engine!r}")
    if opts.address and opts.engine != "ray":
        raise UsageError("--address joins a Ray cluster: it needs --engine ray")
    ref = artifact_ref(artifact, opts.variant, opts.expect_sha256)
    threads = opts.threads or (None if opts.engine == "ray" else _cores())
    # Verified (and pinned) before anything is written; the local engine keeps this session.
    art = ref.open(threads=threads if opts.engine == "local" else 1)
    sha = ref.model_sha256()
    paths = list_covers(images, manifest)
    out = claim_out_dir(out, opts.resume)
    remove_temp_files(out)
    before = read_written(out)
    if before.models - {sha}:
        raise UsageError(f"--out {out}: its rows came from model {sorted(before.models - {sha})[0][:16]}..., not this "
                         f"artifact's {sha[:16]}...; score into a new folder")
    todo = [p for p in paths if p not in before.paths]
    tag = run_tag()
    t0 = time.perf_counter()
    try:
        if opts.engine == "local":
            written, workers = _run_local(ref, art, todo, out, tag, opts, threads)
        else:
            written, workers = _run_ray(ref, art, todo, out, tag, opts)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the shards in {out} are complete: continue with --resume") from None
    seconds = time.perf_counter() - t0
    after = read_written(out)
    summary = build_summary(after, run_rows=written, seconds=seconds, engine=opts.engine, workers=workers,
                            model_sha256=sha, artifact=ref.folder, inputs=len(paths), resumed_from=len(before.paths))
    write_summary(out, summary)
    record_written(out)
    return summary


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _run_local(ref: ArtifactRef, art: Any, todo: list[str], out: Path, tag: str, opts: ScoreOptions,
               threads: int) -> tuple[int, dict[str, Any]]:
    from tqdm.auto import tqdm

    from bookcover.score.local import run_local

    decoders = opts.workers or _cores()
    with tqdm(total=len(todo), desc="scoring", unit="cover", disable=opts.quiet) as bar:
        written = run_local(ref, todo, str(out), tag, batch_size=opts.batch_size, workers=decoders, threads=threads,
                            shard_rows=opts.shard_rows, pool=opts.decode_pool, on_rows=bar.update, artifact=art)
    return written, {"decode_workers": decoders, "decode_pool": opts.decode_pool, "onnxruntime_sessions": 1,
                     "threads_per_session": threads}


def _run_ray(ref: ArtifactRef, art: Any, todo: list[str], out: Path, tag: str,
             opts: ScoreOptions) -> tuple[int, dict[str, Any]]:
    from bookcover.score.ray_engine import run_ray

    if not todo:
        return 0, {"actors": opts.workers or 1}
    return run_ray(ref, todo, str(out), tag, spec=art.input_spec, batch_size=opts.batch_size, workers=opts.workers or 1,
                   threads=opts.threads, shard_rows=opts.shard_rows, address=opts.address, quiet=opts.quiet,
                   init_options=opts.ray_init)
