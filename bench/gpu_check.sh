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
timeout 180 $PY setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1 || log "extension build FAILED (see build.log)"

# --- 2. CUDA tests ------------------------------------------------------------------------------
log "cuda tests"
timeout 90 $PY -m pytest -q -m "cuda" -p no:cacheprovider tests > "$OUT/cuda_tests.log" 2>&1; log "cuda tests rc=$?"

# --- 3. benchmarks: kernels (issue 3) -----------------------------------------------------------
# Triton vs eager at B=256 and the HBM-bandwidth check at B >= 16M (coral_kernels.md/.json),
# then the pytest-benchmark op suite on CUDA (coral_bench.json -> coral_bench.md ratio table).
log "coral kernels"
timeout 90 $PY bench/gpu_kernels.py --out "$OUT" > "$OUT/coral_kernels.log" 2>&1; log "coral kernels rc=$?"
BENCH_DEVICE=cuda timeout 60 $PY -m pytest -q -p no:cacheprovider bench/test_bench_coral.py --benchmark-only \
  -k "test_coral_op and not compiled" --benchmark-json "$OUT/coral_bench.json" > "$OUT/coral_bench.log" 2>&1
log "coral bench rc=$?"
[ -s "$OUT/coral_bench.json" ] && $PY bench/report.py --json "$OUT/coral_bench.json" > "$OUT/coral_bench.md" 2>&1

# --- 3. benchmarks: training throughput (issue 7) -----------------------------------------------
log "training throughput (120 px, batch 256: eager / compiled / channels_last / bf16)"
timeout 150 $PY bench/throughput.py --device cuda --batch 256 --steps 30 --json "$OUT/throughput.json" \
  > "$OUT/throughput.md" 2>&1; log "throughput rc=$?"
log "CUDA training smoke run: quick preset, 2 epochs, bf16 + compile + fused Adam"
timeout 120 $PY -m bookcover.cli train --preset quick --epochs 2 --out /tmp/gpu-train --quiet \
  > "$OUT/train_cuda.log" 2>&1; log "train rc=$?"
cp /tmp/gpu-train/metrics.jsonl "$OUT/train_cuda_metrics.jsonl" 2>/dev/null

# --- 3. benchmarks: LIME (issue 5) --------------------------------------------------------------
# 5,000 perturbations of one cover through ResNet-34 (128 -> 120 px) on the GPU; target < 0.5 s.
log "lime gpu (5000 perturbations, ResNet-34)"
timeout 90 $PY -m bench.lime_speed --gpu "$OUT" > "$OUT/lime_gpu.log" 2>&1; log "lime gpu rc=$? $(tr -d '\n ' < "$OUT/lime_gpu.json" 2>/dev/null)"

# --- 3. benchmarks: onnxruntime-gpu (issue 4) ---------------------------------------------------
# onnxruntime-gpu cannot share an environment with the CPU onnxruntime: install it from local
# wheels in .whl-ort/ (bench/README.md) into its own target dir that shadows the CPU one for
# this step only. Parity (ORT CUDA vs eager CUDA, TF32 off) and latency at batch 1/64/256.
log "onnxruntime-gpu"
ORT_GPU=/tmp/ort-gpu
if ls .whl-ort/onnxruntime_gpu-*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$ORT_GPU" .whl-ort/*.whl > "$OUT/onnx_gpu.log" 2>&1 \
    || log "onnxruntime-gpu install FAILED (see onnx_gpu.log)"
  PYTHONPATH=$ORT_GPU:$PYTHONPATH timeout 120 $PY bench/onnx_speed.py --device cuda --threads 4 \
    --providers CUDAExecutionProvider CPUExecutionProvider --batches 1 64 256 > "$OUT/onnx_gpu.txt" 2>>"$OUT/onnx_gpu.log"
  rc=$?
  grep -q "\['CUDAExecutionProvider'" "$OUT/onnx_gpu.txt" || log "onnxruntime-gpu: CUDA provider NOT active (CPU fallback; see onnx_gpu.log)"
  log "onnxruntime-gpu rc=$rc"; cat "$OUT/onnx_gpu.txt" >> "$OUT/summary.txt"
else
  log "onnxruntime-gpu SKIPPED: no .whl-ort/onnxruntime_gpu-*.whl (see bench/README.md)"
fi


log "done"
