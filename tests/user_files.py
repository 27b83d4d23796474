"""A folder of the user's in the study's layout, and its fingerprint: what no command may delete.

A few real covers (copied from ../shared/data/goodreads-sample into a test's tmp_path, never
into the repo) with their book_data.csv rows, plus files named like ones our commands write.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

USER_FILES = {
    "report.md": b"# my own report\n",
    "config.json": b'{"mine": true}\n',
    "results.json": b'{"score": 1}\n',
    "model.onnx": b"my model",
    "x.overlay.png": b"\x89PNG my overlay",
    "2023-beach.png": b"\x89PNG holiday photo",
}


def make_user_folder(folder: Path, sample: Path, covers: int = 3) -> Path:
    """folder with `covers` real covers in images/, their book_data.csv rows and USER_FILES."""
    (folder / "images").mkdir(parents=True)
    lines = (sample / "book_data.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "book_data.csv").write_text("".join(lines[: covers + 1]), encoding="utf-8")
    for row in range(covers):
        shutil.copyfile(sample / "images" / f"{row}.jpg", folder / "images" / f"{row}.jpg")
    for name, data in USER_FILES.items():
        (folder / name).write_bytes(data)
    return folder


def fingerprint(folder: Path) -> dict[str, str]:
    """md5 of every file below folder, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
