"""The CPU half of explaining a cover, done ahead in worker processes while the model runs.

Explaining a cover is CPU work (decode, quickshift, lime's masks and fill, and on synthetic
covers the badge-free re-render), then device work (perturb, predict, fit). Quickshift alone
takes about 0.3 s a cover at its 256 px segmentation size (segment.SEGMENT_SIZE; measured on a
loaded 2-core VM), several times what the GPU needs for 5,000 perturbations, so
:class:`CoverPipeline` runs the CPU half of the next covers in worker processes while the
main process explains the current one. The workers compute exactly what the main process
would (same seed, same calls): the explanations are identical either way.

This module imports no torch: workers start in a fraction of a second, while the main
process loads the model.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bookcover.data.cache import ignore_sigint
from bookcover.data.images import load_cover
from bookcover.errors import BookcoverError, CoverError
from bookcover.explain.fill import fill_image
from bookcover.explain.masks import draw_masks, segmentation_seed
from bookcover.explain.segment import SEGMENT_SIZE, segment

MAX_WORKERS = 4  # quickshift ~0.3 s a cover (256 px) vs ~0.08 s of H200 time: 4 workers come closest


@dataclass
class ExplainOptions:
    """Everything that determines an explanation (and so goes into the weights JSON)."""

    samples: int = 1000
    segmenter: str = "quickshift"
    segment_size: int | None = SEGMENT_SIZE  # segment the input resampled to this square (None: as it is)
    hide_color: float | None = None  # None: per-segment mean colour, lime's default
    target: str = "proba"
    seed: int = 0
    batch: int | None = None  # samples per model call; None: automatic

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "segmenter": self.segmenter,
            "segment_size": self.segment_size,
            "hide_color": self.hide_color,
            "target": self.target,
            "seed": self.seed,
        }


@dataclass
class PreparedImage:
    """lime's steps before the model, in lime's order: segments, then masks, then the fill."""

    image: np.ndarray  # uint8 (H, W, 3)
    segments: np.ndarray  # int64 (H, W), ids 0..n-1
    masks: np.ndarray  # int64 (samples, n), row 0 all ones
    fill: np.ndarray  # uint8 (H, W, 3)


def prepare_image(image: np.ndarray, options: ExplainOptions) -> PreparedImage:
    """Segment, draw the masks and build the fill, with lime's RandomState in lime's order."""
    rs = np.random.RandomState(options.seed)
    segments = segment(image, options.segmenter, segmentation_seed(rs), options.segment_size)
    masks = draw_masks(rs, options.samples, int(segments.max()) + 1)
    return PreparedImage(image, segments, masks, fill_image(image, segments, options.hide_color))


@dataclass
class PreparedCover:
    """One cover file made ready for the model, or the one-line reason it cannot be read."""

    path: str
    prepared: PreparedImage | None = None
    error: str | None = None
    planted: object | None = None  # bookcover.explain.planted.PlantedCover of a synthetic cover
    badge_pair: np.ndarray | None = None  # uint8 (2, H, W, 3): the cover with and without its badge


def prepare_cover(path: str, image_size: tuple[int, int], options: ExplainOptions) -> PreparedCover:
    """Everything about a cover file that needs no model. Runs in a worker (or inline)."""
    from bookcover.explain.planted import badge_pair, planted_cover

    try:
        image = load_cover(path, image_size)
    except CoverError as exc:
        return PreparedCover(str(path), error=str(exc))
    cover = PreparedCover(str(path), prepare_image(image, options))
    planted = planted_cover(path)
    if planted is not None and planted.badge_box is not None:
        cover.planted, cover.badge_pair = planted, badge_pair(path, planted, image_size)
    return cover


def _warm() -> int:
    """Import what a worker needs (skimage's quickshift) before the first cover arrives."""
    import skimage.segmentation  # noqa: F401

    return os.getpid()


def resolve_workers(workers: str | int, device: str, n_covers: int) -> int:
    """Worker processes for --workers: a number, or auto. auto: on a GPU the CPU half would
    otherwise leave the device idle about half the time, so up to MAX_WORKERS (one even for a
    single cover: it segments while the model loads); on the CPU the model already uses every
    core, so none."""
    if str(workers) != "auto":
        try:
            n = int(workers)
        except ValueError:
            n = -1
        if n < 0:
            raise BookcoverError(f"--workers must be auto or a number >= 0, got {workers!r}")
        return n
    if device == "auto":
        import torch  # only here: torch is what decides whether "auto" means a GPU

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not device.startswith("cuda") or n_covers < 1:
        return 0
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 2) - 1, n_covers))


class CoverPipeline:
    """Prepares covers in ``workers`` processes, ``workers * 2`` covers ahead, in input order.

    ``workers=0`` prepares each cover inline when it is needed (the sequential path). Start it
    before loading the model: the workers import their libraries while the model loads.
    """

    def __init__(self, workers: int = 0):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # spawn: workers never inherit a process that has already started CUDA or torch threads.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=ignore_sigint)
            for _ in range(workers):
                self._pool.submit(_warm)

    def prepare(self, paths: list, image_size: tuple[int, int], options: ExplainOptions) -> Iterator[PreparedCover]:
        """PreparedCover for each path, in order."""
        if self._pool is None:
            for path in paths:
                yield prepare_cover(str(path), image_size, options)
            return
        ahead = self.workers * 2
        pending: deque[Future] = deque()
        todo = iter(paths)
        for path in todo:
            pending.append(self._pool.submit(prepare_cover, str(path), image_size, options))
            if len(pending) >= ahead:
                break
        while pending:
            cover = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(self._pool.submit(prepare_cover, str(nxt), image_size, options))
            yield cover

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> CoverPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
