"""Build bookcover-fast, with the fused CORAL op from csrc/ when its sources are present.

The C++ (CPU) op is always built. The CUDA op is added when a CUDA toolkit is found
(CUDA_HOME, or /usr/local/cuda) unless BOOKCOVER_NO_CUDA=1. Without a GPU set
TORCH_CUDA_ARCH_LIST (e.g. "9.0"). On an x86 build machine with AVX2+FMA the CPU op is compiled
for x86-64-v3 (BOOKCOVER_NO_AVX2=1 builds the portable baseline instead). The extension is
optional at runtime: without it, the dispatcher falls back to the reference and says so once.
"""

import glob
import os

from setuptools import setup

ext_modules, cmdclass = [], {}
cpp_sources = sorted(glob.glob("csrc/*.cpp"))
if cpp_sources and os.environ.get("BOOKCOVER_NO_EXT") != "1":
    # torch.utils.cpp_extension reads CUDA_HOME when it is imported, and its own guess from an
    # nvcc wrapper on PATH (/usr/local/bin/nvcc -> /usr/local) breaks the link: decide first.
    cuda_home = os.environ.get("CUDA_HOME") or ("/usr/local/cuda" if os.path.isdir("/usr/local/cuda") else None)
    if cuda_home:
        os.environ["CUDA_HOME"] = cuda_home

    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    def _host_has_avx2() -> bool:
        """AVX2+FMA on the build machine (Linux): the CPU op then uses ATen's AVX2 vectors."""
        try:
            flags = open("/proc/cpuinfo").read().split()
        except OSError:
            return False
        return "avx2" in flags and "fma" in flags

    cxx = ["-O3", "-fopenmp", "-march=x86-64-v2"] if os.name != "nt" else ["/O2"]
    if os.name != "nt" and os.environ.get("BOOKCOVER_NO_AVX2") != "1" and _host_has_avx2():
        cxx = [f for f in cxx if not f.startswith("-march")]
        cxx += ["-march=x86-64-v3", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2", "-Wno-unknown-pragmas"]
    cu_sources = sorted(glob.glob("csrc/*.cu"))
    use_cuda = bool(cu_sources and cuda_home and os.environ.get("BOOKCOVER_NO_CUDA") != "1")
    if use_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")
        ext = CUDAExtension(
            "bookcover._C",
            cpp_sources + cu_sources,
            extra_compile_args={"cxx": cxx + ["-DBOOKCOVER_WITH_CUDA"], "nvcc": ["-O3", "-DBOOKCOVER_WITH_CUDA"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension("bookcover._C", cpp_sources, extra_compile_args=cxx, extra_link_args=["-fopenmp"])
    ext_modules = [ext]
    cmdclass = {"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)}

setup(ext_modules=ext_modules, cmdclass=cmdclass)
