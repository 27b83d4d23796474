"""The covers a score job reads: a folder (recursive), a study-layout folder, or a CSV/Parquet list.

Every path becomes an absolute path string: rows name covers that way, and resume matches on it,
so a job resumed from another working directory still recognises what it wrote. Symlinks are
kept as they are (a folder of links to the real covers is a fine catalogue).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from bookcover.consumer import load_consumer
from bookcover.errors import DataError, UsageError

GOODREADS_CSV = "book_data.csv"
PATH_COLUMN = "path"


def list_covers(images: str | Path | None = None, manifest: str | Path | None = None) -> list[str]:
    """Absolute cover paths from exactly one of ``images`` (a folder) or ``manifest`` (a list),
    duplicates dropped (a path is scored once)."""
    if (images is None) == (manifest is None):
        raise UsageError("give exactly one of --images DIR or --manifest FILE.csv|FILE.parquet")
    paths = folder_covers(Path(images)) if images is not None else list_file_covers(Path(manifest))
    return list(dict.fromkeys(paths))


def folder_covers(folder: Path) -> list[str]:
    """A study-layout folder (book_data.csv: images/<row>.jpg per row, missing files included so
    they are reported) or any folder, recursively, in natural order."""
    if not folder.is_dir():
        raise DataError(f"--images {folder}: not a folder")
    if (folder / GOODREADS_CSV).is_file():
        rows = _count_csv_rows(folder / GOODREADS_CSV)
        return [os.path.abspath(folder / "images" / f"{i}.jpg") for i in range(rows)]
    return [os.path.abspath(p) for p in load_consumer().find_images(folder)]


def list_file_covers(path: Path) -> list[str]:
    """A CSV or Parquet list with a ``path`` column; relative paths are relative to the list's folder."""
    if not path.is_file():
        raise DataError(f"--manifest {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = _read_csv_paths(path)
    elif suffix in (".parquet", ".pq"):
        raw = _read_parquet_paths(path)
    else:
        raise DataError(f"--manifest {path}: expected a .csv or .parquet list with a path column")
    if not raw:
        raise DataError(f"--manifest {path}: no rows")
    base = path.parent
    return [_resolve(base, text, f"{path}:{i + 2}") for i, text in enumerate(raw)]


def _resolve(base: Path, text: str | None, where: str) -> str:
    """Absolute paths as given; relative ones joined to the list's folder, never escaping it with '..'."""
    rel = (text or "").strip()
    if not rel:
        raise DataError(f"{where}: empty path")
    if os.path.isabs(rel):
        return os.path.normpath(rel)
    joined = os.path.normpath(os.path.join(os.path.abspath(base), rel))
    if os.path.commonpath([joined, os.path.abspath(base)]) != os.path.abspath(base):
        raise DataError(f"{where}: relative path {rel!r} escapes the list's folder {base}")
    return joined


def _read_csv_paths(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if PATH_COLUMN not in (reader.fieldnames or []):
                raise DataError(f"{path}: missing column(s) path (found: {', '.join(reader.fieldnames or []) or 'none'})")
            return [row[PATH_COLUMN] for row in reader]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None


def _read_parquet_paths(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        if PATH_COLUMN not in schema.names:
            raise DataError(f"{path}: missing column(s) path (found: {', '.join(schema.names) or 'none'})")
        column = pq.read_table(path, columns=[PATH_COLUMN]).column(PATH_COLUMN)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: unreadable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        raise DataError(f"{path}: column path holds {column.type}, not text")
    return column.to_pylist()


def _count_csv_rows(path: Path) -> int:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return sum(1 for _ in csv.DictReader(fh))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 CSV ({exc.reason})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
