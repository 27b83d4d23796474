"""File modes: files made by tempfile get the mode a plain open() or mkdir() would have given."""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def follow_umask(path: str | Path, directory: bool = False) -> None:
    """Give a file made by tempfile (0600, or 0700 for folders) the mode a plain open/mkdir gives."""
    base = 0o777 if directory else 0o666
    os.chmod(path, base & ~current_umask())
