"""One-line notices to stderr, each printed once per process (a leaf module: imports nothing
of the package, so the dispatcher and the Triton door can both use it without an import cycle)."""

from __future__ import annotations

import sys

_SEEN: set[str] = set()


def notice(message: str) -> None:
    """Print ``bookcover: message`` to stderr the first time this message is given."""
    if message not in _SEEN:
        _SEEN.add(message)
        print(f"bookcover: {message}", file=sys.stderr)
