"""JSON as the project writes it: null for undefined numbers."""

import json

import numpy as np

from bookcover.jsonio import dumps_json, write_json


def _reject(name):
    raise ValueError(f"bare {name} is not JSON")


def test_nan_and_inf_are_written_as_null(tmp_path):
    record = {"mae": float("nan"), "up": float("inf"), "n": np.int64(3), "x": np.float32(0.5), "v": [np.nan, 1.0]}
    text = dumps_json(record)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"mae": None, "up": None, "n": 3, "x": 0.5, "v": [None, 1.0]}
    write_json(tmp_path / "r.json", record)
    json.loads((tmp_path / "r.json").read_text(), parse_constant=_reject)  # strict: no bare NaN
