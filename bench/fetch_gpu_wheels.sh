#!/usr/bin/env bash
# Download, here, the wheels bench/gpu_check.sh needs on a GPU machine that has only torch,
# triton, onnx and onnxruntime and no network. Carry .whl with the run (the H200 image needs none).
#   bench/fetch_gpu_wheels.sh            # Python 3.12 x86_64 manylinux wheels into .whl/
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${PYV:-3.12}
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
common=(--only-binary=:all: --python-version "$PYV" --implementation cp "${plat[@]}")
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -qx '/.whl-ort/' .git/info/exclude 2>/dev/null || echo /.whl-ort/ >> .git/info/exclude
# What the package and its GPU checks import beyond torch/onnx/onnxruntime (with their deps).
# scikit-image is left out on purpose: with scipy it is ~50 MB of the device tool's 64 MiB carry
# limit, and the LIME GPU check falls back to a grid segmentation without it.
python3 -m pip download -q "${common[@]}" -d .whl click tqdm matplotlib pytest pytest-benchmark
# torch, numpy and pillow are already on the GPU machine: never shadow them.
rm -f .whl/numpy-*.whl .whl/torch-*.whl .whl/pillow-*.whl
# onnxruntime-gpu (~244 MiB) is more than one device call may carry (64 MiB): it travels in
# parts over consecutive calls, see bench/ort_gpu_parts.sh (fetch, split, stash, join).
du -sh .whl 2>/dev/null || true
