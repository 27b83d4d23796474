"""The torch-free artifact consumer, export/predict.py, imported as a module.

export/predict.py is what a production service runs, with no torch and no bookcover; it must stay
a single standalone file. bookcover-fast loads ONNX artifacts through that same file (explain
--onnx, the tests), so there is one implementation of artifact verification (manifest hashes,
pinned sha256) and of preprocessing, not two that can drift apart.

The file is found inside the package in a wheel install (setup.py ships export/ as
bookcover._export), else beside the package in the repository checkout (``pip install -e .``,
as ``make`` does, or the checkout on PYTHONPATH).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from bookcover.errors import ArtifactError

INSTALLED_FILE = Path(__file__).resolve().parent / "_export" / "predict.py"
CHECKOUT_FILE = Path(__file__).resolve().parents[1] / "export" / "predict.py"
CONSUMER_FILE = INSTALLED_FILE if INSTALLED_FILE.is_file() else CHECKOUT_FILE
MODULE_NAME = "bookcover_export_predict"


def load_consumer() -> ModuleType:
    """export/predict.py as a module (imported once per process)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    if not CONSUMER_FILE.is_file():
        raise ArtifactError(f"{CONSUMER_FILE}: the artifact consumer is missing; reinstall bookcover-fast "
                            "(pip install . or pip install -e .) to load ONNX artifacts")
    spec = importlib.util.spec_from_file_location(MODULE_NAME, CONSUMER_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[MODULE_NAME]
        raise
    return module


def load_artifact(folder: str | Path, variant: str | None = None, expect_sha256: str | None = None,
                  providers: list[str] | None = None):
    """Verify and open an artifact with the consumer's ``Artifact.load``; its ArtifactError becomes
    bookcover's (one line, exit code 2). ``folder`` may also be the model file itself."""
    consumer = load_consumer()
    folder = Path(folder)
    if variant is None and folder.suffix == ".onnx":
        folder, variant = folder.parent, folder.name
    try:
        return consumer.Artifact.load(folder, variant or consumer.MODEL_FILE, providers=providers,
                                      expect_sha256=expect_sha256)
    except consumer.ArtifactError as exc:
        raise ArtifactError(str(exc)) from None
