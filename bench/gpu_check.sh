#!/usr/bin/env bash
# One prepared GPU check (DESIGN.md "GPU checks"): build the CUDA extension, run the CUDA tests,
# run the GPU benchmarks, write everything to the folder given as $1. No network needed:
# extra packages come from local wheels in .whl/ (see bench/README.md). Budget: < 8 minutes.
set -uo pipefail
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

# --- environment ----------------------------------------------------------------------------
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

# --- 1. build the CUDA extension in place (issue 3) -------------------------------------------
log "build extension"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
timeout 240 $PY setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || log "extension build FAILED (see build.log)"

# --- 2. CUDA tests ------------------------------------------------------------------------------
log "cuda tests"
timeout 150 $PY -m pytest -q -m "cuda" -p no:cacheprovider tests > "$OUT/cuda_tests.log" 2>&1; log "cuda tests rc=$?"

# --- 3. benchmarks: kernels (issue 3) -----------------------------------------------------------

# --- 3. benchmarks: training throughput (issue 7) -----------------------------------------------

# --- 3. benchmarks: LIME (issue 5) --------------------------------------------------------------
# 5,000 perturbations of one cover through ResNet-34 (128 -> 120 px) on the GPU; target < 0.5 s.
log "lime gpu (5000 perturbations, ResNet-34)"
timeout 180 $PY -m bench.lime_speed --gpu "$OUT" > "$OUT/lime_gpu.log" 2>&1; log "lime gpu rc=$? $(tr -d '\n ' < "$OUT/lime_gpu.json" 2>/dev/null)"

# --- 3. benchmarks: onnxruntime-gpu (issue 4) ---------------------------------------------------

log "done"
