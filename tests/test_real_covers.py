"""The whole pipeline on real Goodreads covers: read -> cache -> short training -> evaluate."""

import json

from bookcover.classifier.evaluate import evaluate_checkpoint
from bookcover.classifier.train import train_classifier
from bookcover.data.dataset import prepare_dataset
from tests.conftest import tiny_config


def test_pipeline_on_goodreads_sample(goodreads_sample, tmp_path):
    ds = prepare_dataset(goodreads_sample, size=(36, 36), max_covers=150, quiet=True)
    assert len(ds) == 150 and ds.summary()["per_level"] == [30] * 5
    assert ds.cache.images.shape[1:] == (36, 36, 3)

    cfg = tiny_config(goodreads_sample, max_covers=150, epochs=1, score_column="book_rating_count")
    result = train_classifier(cfg, tmp_path / "run", quiet=True)
    test = result["splits"]["test"]
    assert test["model"]["n"] == 15 and test["baselines"]["middle"]["mae"] > 0

    again = evaluate_checkpoint(tmp_path / "run" / "best.pt", split="test", out=tmp_path / "eval")
    assert again["test"]["model"] == test["model"]  # same held-out split, same predictions
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["splits"]["test"]["model"]["n"] == 15
