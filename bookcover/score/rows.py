"""One scored row per cover, made the same way by both engines.

Decoding and preprocessing are the consumer's (export/predict.py ``preprocess``), the model call
is the consumer's ``Artifact.predict_pixels`` and the records are its ``prediction_records`` and
``error_record``: this module only arranges them into the Parquet schema below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bookcover.consumer import load_consumer

# path, level, expected_level, probas (K-1 floats), level_probs (K floats), error, model_sha256
COLUMNS = ("path", "level", "expected_level", "probas", "level_probs", "error", "model_sha256")


def schema():
    """The Parquet schema of a shard (level and the probabilities are null on an error row)."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()),
        ("level", pa.int64()),
        ("expected_level", pa.float64()),
        ("probas", pa.list_(pa.float32())),
        ("level_probs", pa.list_(pa.float32())),
        ("error", pa.string()),
        ("model_sha256", pa.string()),
    ])


def decode_batch(paths: Sequence[str], resize: Sequence[int], crop: int) -> tuple[np.ndarray, list[str | None]]:
    """uint8 (N, crop, crop, 3) pixels and one error reason (or None) per path; a bad cover's
    pixels are zeros and never reach the model."""
    consumer = load_consumer()
    pixels = np.zeros((len(paths), crop, crop, 3), np.uint8)
    errors: list[str | None] = []
    for j, path in enumerate(paths):
        try:
            pixels[j] = consumer.preprocess(path, resize, crop)
            errors.append(None)
        except consumer.CoverError as exc:
            errors.append(consumer.error_record(path, exc)["error"])
    return pixels, errors


def score_batch(artifact: Any, paths: Sequence[str], pixels: np.ndarray, errors: Sequence[str | None],
                model_sha256: str) -> list[dict[str, Any]]:
    """Rows for one decoded batch: the model runs once on the covers that decoded."""
    consumer = load_consumer()
    good = [j for j, e in enumerate(errors) if not e]
    records: dict[int, dict[str, Any]] = {}
    if good:
        pred = artifact.predict_pixels(pixels[good], batch_size=max(len(good), 1))
        records = dict(zip(good, consumer.prediction_records([paths[j] for j in good], pred), strict=True))
    rows = []
    for j, path in enumerate(paths):
        row = records.get(j) or {"path": str(path), "level": None, "expected_level": None, "probas": None,
                                 "level_probs": None}
        row["error"] = errors[j] or None
        row["model_sha256"] = model_sha256
        rows.append(row)
    return rows


def rows_table(rows: list[dict[str, Any]]):
    """A pyarrow Table in the shard schema."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=schema())


def error_reason(error: str) -> str:
    """The kind of a one-line error, for counting: 'corrupt or truncated image (...)' -> its
    first words, without the particulars in brackets."""
    return error.split(" (", 1)[0].strip()
