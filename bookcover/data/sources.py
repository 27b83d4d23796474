"""Read a dataset description: the study's Goodreads layout, or a generic path,score manifest.

Both give a Manifest: where each cover lies and a popularity score (higher = more popular).
Nothing is decoded here; the cache does that once.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bookcover.errors import DataError

GOODREADS_CSV = "book_data.csv"


@dataclass
class Manifest:
    """Covers to use: paths relative to root, with one popularity score each."""

    root: Path
    paths: list[str]
    scores: np.ndarray
    description: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: np.ndarray) -> Manifest:
        keep = np.asarray(keep)
        return Manifest(
            self.root,
            [self.paths[i] for i in keep],
            self.scores[keep],
            self.description,
            list(self.skipped),
        )

    def absolute(self, i: int) -> Path:
        return self.root / self.paths[i]


def read_dataset(data: str | Path, score_column: str | None = None) -> Manifest:
    """Read either layout: a folder with book_data.csv, or a manifest CSV (path,score)."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: no such file or folder")
    if data.is_dir():
        if (data / GOODREADS_CSV).is_file():
            return read_goodreads(data, score_column)
        manifest = data / "manifest.csv"
        if manifest.is_file():
            return read_manifest(manifest, score_column)
        raise DataError(f"{data}: neither {GOODREADS_CSV} (the study's layout) nor manifest.csv found")
    if data.suffix.lower() == ".csv":
        # Only book_data.csv is the study's layout; any other CSV is a manifest, and one without
        # its columns is refused, never swapped for a book_data.csv that happens to lie beside it.
        if data.name == GOODREADS_CSV:
            return read_goodreads(data.parent, score_column)
        return read_manifest(data, score_column)
    raise DataError(f"{data}: expected a folder or a .csv manifest")


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'})"
                )
            return list(reader)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def read_goodreads(root: str | Path, score_column: str | None = None) -> Manifest:
    """The study's layout: book_data.csv in list order plus images/<row>.jpg.

    Popularity is list order (row 0 most popular) unless score_column names a numeric column
    such as book_rating_count, ranked descending. Rows whose score is missing are skipped.
    """
    root = Path(root)
    required = ("book_title",) + ((score_column,) if score_column else ())
    rows = _read_csv(root / GOODREADS_CSV, required)
    if not rows:
        raise DataError(f"{root / GOODREADS_CSV}: no rows")
    paths, scores, skipped = [], [], []
    for i, row in enumerate(rows):
        rel = f"images/{i}.jpg"
        if score_column is None:
            score = float(len(rows) - i)
        else:
            score = _parse_float(row.get(score_column, ""))
            if score is None:
                skipped.append((rel, f"missing or non-numeric {score_column}"))
                continue
        paths.append(rel)
        scores.append(score)
    how = f"column {score_column}" if score_column else "list order"
    return Manifest(root, paths, np.asarray(scores), f"goodreads layout at {root} (popularity by {how})", skipped)


def read_manifest(path: str | Path, score_column: str | None = None) -> Manifest:
    """A generic manifest: columns path (relative to the CSV's folder) and score (or score_column)."""
    path = Path(path)
    root = path.parent.resolve()
    column = score_column or "score"
    rows = _read_csv(path, ("path", column))
    if not rows:
        raise DataError(f"{path}: no rows")
    paths, scores, skipped = [], [], []
    for line, row in enumerate(rows, start=2):
        rel = row["path"].strip()
        resolved = safe_join(root, rel, where=f"{path}:{line}")
        score = _parse_float(row[column])
        if score is None:
            skipped.append((rel, f"missing or non-numeric {column}"))
            continue
        paths.append(str(resolved.relative_to(root)))
        scores.append(score)
    return Manifest(root, paths, np.asarray(scores), f"manifest {path}", skipped)


def safe_join(root: Path, rel: str, where: str = "") -> Path:
    """Join rel under root, refusing absolute paths and paths that escape root (.., symlinks)."""
    prefix = f"{where}: " if where else ""
    if not rel:
        raise DataError(f"{prefix}empty path")
    if Path(rel).is_absolute():
        raise DataError(f"{prefix}absolute path {rel!r} refused: paths must be relative to {root}")
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{prefix}path {rel!r} escapes the data root {root}")
    return resolved


def _parse_float(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
