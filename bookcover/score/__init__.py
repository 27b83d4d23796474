"""Catalogue scoring: every cover of a folder or a list, into a resumable Parquet dataset.

Two engines give identical rows: ``local`` (a decode pool feeding one onnxruntime session; no Ray
import) and ``ray`` (Ray Data: decode tasks, a pool of onnxruntime actors, a Parquet datasink).
Both decode, preprocess and verify through the artifact consumer (export/predict.py).
"""

from bookcover.score.job import ScoreOptions, score_catalogue

__all__ = ["ScoreOptions", "score_catalogue"]
