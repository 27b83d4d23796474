#!/usr/bin/env bash
# Download, here, the wheels bench/gpu_check.sh needs on a GPU machine that has only torch,
# triton, onnx and onnxruntime and no network. Carry .whl (and .whl-ort) with the run.
#   bench/fetch_gpu_wheels.sh            # Python 3.12 x86_64 manylinux wheels into .whl/ and .whl-ort/
set -euo pipefail
cd "$(dirname "$0")/.."
PYV=${PYV:-3.12}
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
common=(--only-binary=:all: --python-version "$PYV" --implementation cp "${plat[@]}")
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -qx '/.whl-ort/' .git/info/exclude 2>/dev/null || echo /.whl-ort/ >> .git/info/exclude
# What the package and its GPU checks import beyond torch/onnx/onnxruntime (with their deps).
python3 -m pip download -q "${common[@]}" -d .whl click tqdm matplotlib pytest pytest-benchmark scikit-image
# torch and numpy are already on the GPU machine: never shadow them.
rm -f .whl/numpy-*.whl .whl/torch-*.whl
python3 -m pip download -q --no-deps "${common[@]}" -d .whl-ort onnxruntime-gpu
du -sh .whl .whl-ort
