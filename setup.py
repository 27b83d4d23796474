"""Build bookcover-fast, with the fused CORAL op from csrc/ when its sources are present.

The C++ (CPU) op is always built. The CUDA op is added when a CUDA toolkit is found
(CUDA_HOME, or /usr/local/cuda) unless BOOKCOVER_NO_CUDA=1. The extension is optional at
runtime: without it, the dispatcher falls back to the reference and says so once.

The build runs where it is installed (see cuda_arch_list and cxx_flags):
- CUDA: the user's TORCH_CUDA_ARCH_LIST always wins; else, with a GPU visible, torch builds for
  that GPU; with none visible, for DEFAULT_CUDA_ARCHS (A100, A10/RTX 30, L4/RTX 40, H100/H200,
  plus PTX for newer cards), never for one card only.
- CPU: the compiler's portable x86-64 baseline, no -march. The hot kernels are compiled a second
  time for AVX2+FMA (csrc/coral_cpu_avx2.cpp) and chosen at run time when the CPU has both.

The export/ folder (the torch-free artifact consumer, export/predict.py) is shipped inside the
package as bookcover._export, so that a wheel install loads artifacts with the same file.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

# The CUDA architectures built when no GPU is visible and the user set none.
DEFAULT_CUDA_ARCHS = "8.0;8.6;8.9;9.0+PTX"


def cuda_arch_list(env: Mapping[str, str], gpu_present: bool) -> str | None:
    """The TORCH_CUDA_ARCH_LIST to set, or None to leave the choice where it is: the user's list
    if set, else torch's detection of the GPU that is present."""
    if env.get("TORCH_CUDA_ARCH_LIST", "").strip():
        return None
    if gpu_present:
        return None
    return DEFAULT_CUDA_ARCHS


def cxx_flags(os_name: str) -> list[str]:
    """Host compiler flags: optimised, OpenMP, and no -march, so the library runs on any CPU of
    its architecture (the AVX2 copy of the kernels carries its own target, chosen at run time)."""
    if os_name == "nt":
        return ["/O2"]
    return ["-O3", "-fopenmp"]


def _cuda_home() -> str | None:
    # torch.utils.cpp_extension reads CUDA_HOME when it is imported, and its own guess from an
    # nvcc wrapper on PATH (/usr/local/bin/nvcc -> /usr/local) breaks the link: decide first.
    return os.environ.get("CUDA_HOME") or ("/usr/local/cuda" if os.path.isdir("/usr/local/cuda") else None)


def extensions() -> tuple[list, dict]:
    """(ext_modules, cmdclass) for csrc/, or none when its sources are absent or BOOKCOVER_NO_EXT=1."""
    cpp_sources = sorted(glob.glob("csrc/*.cpp"))
    if not cpp_sources or os.environ.get("BOOKCOVER_NO_EXT") == "1":
        return [], {}
    cuda_home = _cuda_home()
    if cuda_home:
        os.environ["CUDA_HOME"] = cuda_home

    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    cxx = cxx_flags(os.name)
    cu_sources = sorted(glob.glob("csrc/*.cu"))
    use_cuda = bool(cu_sources and cuda_home and os.environ.get("BOOKCOVER_NO_CUDA") != "1")
    if use_cuda:
        archs = cuda_arch_list(os.environ, torch.cuda.is_available())
        if archs is not None:
            os.environ["TORCH_CUDA_ARCH_LIST"] = archs
        ext = CUDAExtension(
            "bookcover._C",
            cpp_sources + cu_sources,
            extra_compile_args={"cxx": cxx + ["-DBOOKCOVER_WITH_CUDA"], "nvcc": ["-O3", "-DBOOKCOVER_WITH_CUDA"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension("bookcover._C", cpp_sources, extra_compile_args=cxx, extra_link_args=["-fopenmp"])
    return [ext], {"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)}


def packages() -> dict:
    """The bookcover packages, plus export/ shipped as bookcover._export (one file, not a copy in
    the tree: a wheel install finds the consumer there, a checkout finds it in export/)."""
    from setuptools import find_packages

    here = os.path.dirname(os.path.abspath(__file__))
    return dict(packages=find_packages(where=here, include=["bookcover*"]) + ["bookcover._export"],
                package_dir={"bookcover._export": "export"}, package_data={"bookcover._export": ["README.md"]})


if __name__ == "__main__":  # pip and `python setup.py` run it as __main__; tests import the functions
    from setuptools import setup

    ext_modules, cmdclass = extensions()
    setup(ext_modules=ext_modules, cmdclass=cmdclass, **packages())
