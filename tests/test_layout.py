"""The package's import rules (issue 12), read from the source with ast: features sit on shared layers.

- data/, coral/ and the shared modules never import a feature (classifier, gan), explain, export or the CLI;
- classifier/ never imports the GAN; the GAN, explain and export use only ``bookcover.classifier``'s
  public names, never its internal modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bookcover"
SHARED_MODULES = ("checkpoint.py", "outputs.py", "resume.py", "runlog.py", "jsonio.py", "estimate.py", "figures.py",
                  "filemodes.py", "devices.py", "errors.py", "__init__.py")
UPPER = ("bookcover.classifier", "bookcover.gan", "bookcover.explain", "bookcover.export", "bookcover.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every bookcover module a file imports, at any depth (function-level imports count too)."""
    return imports_in(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("bookcover")}


def files(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        target = PACKAGE / part
        out += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return out


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


LOWER = files("data", "coral", *SHARED_MODULES)


@pytest.mark.parametrize("path", LOWER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lower_layers_never_import_features(path):
    bad = sorted(name for name in imports_of(path) if any(within(name, up) for up in UPPER))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize("path", files("classifier"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_classifier_never_imports_the_gan(path):
    bad = sorted(name for name in imports_of(path) if within(name, "bookcover.gan") or within(name, "bookcover.explain"))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def public_classifier_names() -> set[str]:
    import bookcover.classifier

    return {f"bookcover.classifier.{n}" for n in bookcover.classifier.__all__}


@pytest.mark.parametrize("path", files("gan", "explain", "export.py"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_other_features_use_only_the_classifiers_public_names(path):
    allowed = {"bookcover.classifier"} | public_classifier_names()
    bad = sorted(n for n in imports_of(path) if within(n, "bookcover.classifier") and n not in allowed)
    assert not bad, f"{path.relative_to(PACKAGE)} reaches into the classifier's internals: {bad}"


def test_the_checker_sees_hidden_and_relative_imports():
    source = "def f():\n    from bookcover.classifier.train import train_classifier\n    from . import cache\n"
    names = imports_in(source, "bookcover.data.probe")
    assert "bookcover.classifier.train" in names and "bookcover.data.cache" in names
    assert "bookcover.classifier.train.train_classifier" in names


def test_old_layout_is_gone():
    for old in ("models", "train", "inference.py"):
        assert not (PACKAGE / old).exists(), f"bookcover/{old} should have moved (issue 12)"
