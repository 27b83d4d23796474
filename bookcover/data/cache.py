"""Decode-once cache: every readable cover resized to (H, W) uint8 in one memory-mapped array.

Training reads only this array, never the JPEGs. The cache lives under a key made from the
covers' paths, sizes and modification times plus the target size, so it is reused until the
source changes. Unreadable covers are left out and listed, with the reason, in its index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bookcover.data.images import load_cover
from bookcover.data.sources import Manifest
from bookcover.errors import CoverError, DataError, Interrupted
from bookcover.filemodes import follow_umask
from bookcover.jsonio import dumps_json

# 2: large JPEGs are decoded at a reduced scale (data/images.py draft_size), which can change
# their pixels slightly; caches of version 1 are rebuilt once.
CACHE_VERSION = 2
IMAGES_FILE = "images.u8"
INDEX_FILE = "index.json"


def default_cache_root() -> Path:
    """$BOOKCOVER_CACHE, else $XDG_CACHE_HOME/bookcover-fast, else ~/.cache/bookcover-fast."""
    env = os.environ.get("BOOKCOVER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bookcover-fast"


@dataclass
class CoverCache:
    """The decoded covers: images[i] belongs to paths[i] with scores[i]."""

    directory: Path
    images: np.ndarray  # (N, H, W, 3) uint8, memory-mapped read-only
    paths: list[str]
    scores: np.ndarray
    skipped: list[tuple[str, str]]
    build_seconds: float | None = None  # set only when this call built it

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])


def cache_key(manifest: Manifest, size: tuple[int, int]) -> str:
    """Fingerprint of the source files and the resize target."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, str(manifest.root.resolve()), list(size)]).encode())
    for rel in manifest.paths:
        try:
            st = (manifest.root / rel).stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{rel}\0missing\n".encode())
    return h.hexdigest()[:24]


def build_cache(
    manifest: Manifest,
    size: tuple[int, int] = (128, 128),
    cache_root: str | Path | None = None,
    workers: int | None = None,
    quiet: bool = False,
) -> CoverCache:
    """Decode and resize every cover once (in parallel), or reuse a cache of the same source."""
    import time

    root = Path(cache_root) if cache_root is not None else default_cache_root()
    directory = root / f"covers-{size[0]}x{size[1]}-{cache_key(manifest, size)}"
    if (directory / INDEX_FILE).is_file():
        return open_cache(directory, extra_skipped=manifest.skipped)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    follow_umask(tmp, directory=True)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        n = len(manifest)
        images = np.lib.format.open_memmap(tmp / "staging.npy", mode="w+", dtype=np.uint8, shape=(n, *size, 3))
        ok = np.zeros(n, dtype=bool)
        skipped: list[tuple[str, str]] = []
        jobs = [(str(manifest.root), manifest.paths[i : i + 64], i, size) for i in range(0, n, 64)]
        workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
        with tqdm(total=n, desc="decoding covers", unit="cover", disable=quiet) as bar, \
                closing(_run_jobs(jobs, workers)) as results:
            for first, arrays, errors in results:
                for j, arr in enumerate(arrays):
                    if arr is not None:
                        images[first + j] = arr
                        ok[first + j] = True
                skipped.extend(errors)
                bar.update(len(arrays))
        keep = np.flatnonzero(ok)
        final = np.memmap(tmp / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(max(keep.size, 1), *size, 3))
        for a in range(0, keep.size, 1024):
            final[a : a + 1024] = images[keep[a : a + 1024]]
        final.flush()
        del final, images
        (tmp / "staging.npy").unlink()
        index = {
            "version": CACHE_VERSION,
            "source": manifest.description,
            "size": list(size),
            "count": int(keep.size),
            "paths": [manifest.paths[i] for i in keep],
            "scores": [float(manifest.scores[i]) for i in keep],
            "skipped": skipped,
        }
        (tmp / INDEX_FILE).write_text(dumps_json(index))
        try:
            os.replace(tmp, directory)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Interrupted("interrupted; the partial cache was discarded (nothing was written)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    cache = open_cache(directory, extra_skipped=manifest.skipped)
    cache.build_seconds = time.perf_counter() - start
    return cache


def open_cache(directory: str | Path, extra_skipped: list[tuple[str, str]] | None = None) -> CoverCache:
    directory = Path(directory)
    try:
        index = json.loads((directory / INDEX_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{directory}: not a readable cover cache ({exc})") from None
    h, w = index["size"]
    count = index["count"]
    images = np.memmap(directory / IMAGES_FILE, mode="r", dtype=np.uint8, shape=(max(count, 1), h, w, 3))[:count]
    skipped = [tuple(s) for s in (extra_skipped or [])] + [tuple(s) for s in index["skipped"]]
    return CoverCache(directory, images, index["paths"], np.asarray(index["scores"], dtype=np.float64), skipped)


def _run_jobs(jobs, workers):
    """Decode the jobs, in order, in worker processes that leave Ctrl-C to the parent.

    The terminal sends SIGINT to the workers too; they ignore it, so only the parent raises
    KeyboardInterrupt (one line from the CLI instead of a traceback per worker) and shuts the
    pool down without starting the jobs still queued.
    """
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_decode_chunk, jobs)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=ignore_sigint)
    try:
        yield from pool.map(_decode_chunk, jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def ignore_sigint() -> None:
    """Worker-process initializer: Ctrl-C is the parent's to handle (one line, no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _decode_chunk(job):
    root, rels, first, size = job
    arrays, errors = [], []
    for rel in rels:
        try:
            arrays.append(load_cover(Path(root) / rel, size))
        except CoverError as exc:
            arrays.append(None)
            errors.append((rel, str(exc).split(": ", 1)[-1]))
    return first, arrays, errors


# --- listing and cleaning the cache folder (`bookcover-fast cache list|clean`) ---

COVERS_ENTRY = re.compile(r"covers-(\d+)x(\d+)-[0-9a-f]{24}")
SYNTHETIC_ENTRY = re.compile(r"synthetic-n(\d+)-seed(-?\d+)")
PARTIAL_ENTRY = re.compile(r"\.(building|synth)-[A-Za-z0-9_]+")  # tempfile.mkdtemp names a kill left behind
PARTIAL_AGE = 3600.0  # seconds without a change before a partial entry counts as abandoned, not in progress


@dataclass
class CacheEntry:
    """One folder of the cache root that this program made."""

    path: Path
    kind: str  # "covers" (decoded covers), "synthetic" (generated covers) or "partial" (a build a kill left)
    bytes: int
    detail: str


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(dirpath) / name).lstat().st_size
            except OSError:
                pass
    return total


def _newest_change(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                newest = max(newest, (Path(dirpath) / name).lstat().st_mtime)
            except OSError:
                pass
    return newest


def recognise(folder: Path) -> CacheEntry | None:
    """The entry ``folder`` is, when its name and contents are what this program writes; else None."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    name = folder.name
    if m := COVERS_ENTRY.fullmatch(name):
        if not (folder / INDEX_FILE).is_file():
            return None
        try:
            count = json.loads((folder / INDEX_FILE).read_text()).get("count", "?")
        except (OSError, ValueError):
            count = "?"
        detail = f"{count} covers decoded at {m.group(1)}x{m.group(2)} px"
        return CacheEntry(folder, "covers", _folder_bytes(folder), detail)
    if m := SYNTHETIC_ENTRY.fullmatch(name):
        if not all((folder / f).exists() for f in ("book_data.csv", "planted.json", "images")):
            return None
        detail = f"{m.group(1)} synthetic covers, seed {m.group(2)}"
        return CacheEntry(folder, "synthetic", _folder_bytes(folder), detail)
    if PARTIAL_ENTRY.fullmatch(name):
        return CacheEntry(folder, "partial", _folder_bytes(folder), "an unfinished build (left by a kill?)")
    return None


def cache_entries(root: str | Path | None = None) -> list[CacheEntry]:
    """Every entry of the cache root this program recognises as its own, by name."""
    root = Path(root) if root is not None else default_cache_root()
    if not root.is_dir():
        return []
    found = (recognise(p) for p in sorted(root.iterdir()))
    return [e for e in found if e is not None]


def clean_cache(root: str | Path | None = None, now: float | None = None) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Delete the recognised entries; return (removed, kept). Nothing else in the root is touched.

    A partial entry changed within PARTIAL_AGE seconds is kept: another process may be building it.
    """
    import time

    now = time.time() if now is None else now
    removed, kept = [], []
    for entry in cache_entries(root):
        if entry.kind == "partial" and now - _newest_change(entry.path) < PARTIAL_AGE:
            kept.append(entry)
            continue
        shutil.rmtree(entry.path)
        removed.append(entry)
    return removed, kept


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
