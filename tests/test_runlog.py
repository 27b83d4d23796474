"""A run directory's log: config.json and metrics.jsonl."""

import json
import math

from bookcover.runlog import append_metrics, read_metrics, rewind_metrics, write_config


def test_metrics_round_trip_and_rewind(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_metrics(path) == []
    append_metrics(path, [{"epoch": 1, "v": 1.5}, {"kind": "step", "epoch": 2}])
    append_metrics(path, [{"epoch": 3}])
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2, 3]
    kept = rewind_metrics(path, 2)
    assert [r["epoch"] for r in kept] == [1, 2]
    assert read_metrics(path) == kept
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_write_config(tmp_path):
    write_config(tmp_path, {"config": {"seed": 1}})
    assert json.loads((tmp_path / "config.json").read_text()) == {"config": {"seed": 1}}


def test_undefined_metrics_are_written_as_null_and_read_back_as_nan(tmp_path):
    append_metrics(tmp_path / "m.jsonl", [{"epoch": 1, "val_mae": float("nan")}])
    for line in (tmp_path / "m.jsonl").read_text().splitlines():
        assert json.loads(line)["val_mae"] is None
    assert math.isnan(read_metrics(tmp_path / "m.jsonl")[0]["val_mae"])
