"""The embedded default dataset: synthetic covers generated once into the cache folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from bookcover.data.cache import default_cache_root
from bookcover.data.sources import GOODREADS_CSV
from bookcover.data.synth import synthesise
from bookcover.filemodes import follow_umask


def synthetic_default(n: int, seed: int, cache_root: str | Path | None = None, quiet: bool = False) -> Path:
    """Path to n synthetic covers for seed, generating them (atomically) on first use."""
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    target = root / f"synthetic-n{n}-seed{seed}"
    if (target / GOODREADS_CSV).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=root))
    follow_umask(tmp, directory=True)
    try:
        synthesise(tmp, n=n, seed=seed, quiet=quiet)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / GOODREADS_CSV).is_file():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
