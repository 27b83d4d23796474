"""JSON as the project writes it: ``null`` for undefined numbers, so every file is valid JSON.

Every JSON file the project writes goes through dumps_json / write_json, which write null for
NaN and inf (strict readers reject the bare NaN that json.dumps writes by default).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def jsonable(obj: Any) -> Any:
    """obj with NaN/inf as None, numpy scalars and arrays as Python numbers and lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays (and torch tensors)
    if callable(tolist):
        return jsonable(tolist())
    return obj  # json.dumps will say what it cannot write


def dumps_json(obj: Any, indent: int | None = None) -> str:
    """JSON text with null for undefined numbers: never the bare NaN that strict readers reject."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write obj as JSON (null for NaN/inf), ending with a newline."""
    path = Path(path)
    path.write_text(dumps_json(obj, indent) + "\n")
    return path


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
