"""One exported artifact (fp32 + fp16) of the session's tiny run, shared by the export tests.

Exporting ResNet-34 with the dynamo exporter takes tens of seconds on a small CPU, so it is done
once per session and every test reads the same folder (tests that modify it work on a copy).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PREDICT_SCRIPT = REPO / "export" / "predict.py"


def load_consumer() -> ModuleType:
    """Import export/predict.py as a module (export/ is a folder of scripts, not a package),
    the same way bookcover-fast itself does."""
    from bookcover.consumer import load_consumer as load

    return load()


@pytest.fixture(scope="session")
def consumer() -> ModuleType:
    return load_consumer()


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory) -> tuple[Path, dict]:
    """(artifact folder, validation report) for tiny_run/best.pt, with the fp16 variant,
    made through the CLI so that its success path is covered too."""
    import json

    from click.testing import CliRunner

    from bookcover.cli import main

    out = tmp_path_factory.mktemp("artifacts") / "tiny"
    res = CliRunner().invoke(main, ["export", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(out),
                                    "--fp16", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "model.onnx: parity on" in res.output and "model.fp16.onnx: parity on" in res.output
    from bookcover.export import sha256_file

    for name in ("model.onnx", "model.fp16.onnx"):  # export prints what a consumer pins
        assert f"{name}: sha256 {sha256_file(out / name)}" in res.output
    return out, json.loads((out / "validation.json").read_text())
