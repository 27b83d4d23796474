"""setup.py's build decisions: a build runs where it is installed (issue 18, item 4).

setup.py is imported as a module (its setup() call runs only as __main__), so the decisions are
tested as the pure functions they are.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup_py():
    spec = importlib.util.spec_from_file_location("bookcover_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_present_gpu_is_left_to_torch(setup_py):
    assert setup_py.cuda_arch_list({}, gpu_present=True) is None


def test_no_gpu_builds_the_documented_list(setup_py):
    assert setup_py.cuda_arch_list({}, gpu_present=False) == "8.0;8.6;8.9;9.0+PTX"
    assert setup_py.cuda_arch_list({"TORCH_CUDA_ARCH_LIST": " "}, gpu_present=False) == "8.0;8.6;8.9;9.0+PTX"


@pytest.mark.parametrize("gpu_present", [True, False])
def test_the_users_list_always_wins(setup_py, gpu_present):
    assert setup_py.cuda_arch_list({"TORCH_CUDA_ARCH_LIST": "7.5"}, gpu_present) is None


def test_cpu_flags_are_portable(setup_py):
    flags = setup_py.cxx_flags("posix")
    assert not any(f.startswith(("-march", "-mavx", "-mfma", "-DCPU_CAPABILITY")) for f in flags), flags
    assert "-O3" in flags


def test_the_consumer_is_shipped_from_export(setup_py):
    pkgs = setup_py.packages()
    assert "bookcover._export" in pkgs["packages"] and pkgs["package_dir"]["bookcover._export"] == "export"
    assert "bookcover.coral" in pkgs["packages"]
