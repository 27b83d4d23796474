#!/usr/bin/env bash
# Carry the onnxruntime-gpu wheel (~244 MiB) to the offline GPU machine in parts: one device call
# carries at most 64 MiB, but a machine stays warm ~30 s after a call and keeps what earlier
# calls wrote, so the parts travel over consecutive calls and are joined there. See bench/README.md.
#
#   here:  bench/ort_gpu_parts.sh fetch        # download onnxruntime-gpu==$ORT_GPU_VERSION into .whl-ort/
#          bench/ort_gpu_parts.sh split        # .whl-ort/<wheel> -> .whl-ort/parts/<wheel>.part-NN (+ .sha256)
#          bench/ort_gpu_parts.sh plan         # the device calls to make, one per part
#   there: bench/ort_gpu_parts.sh stash        # copy the carried parts to $ORT_PARTS_DIR (survives between calls)
#          bench/ort_gpu_parts.sh join         # join them into .whl-ort/<wheel> and check its sha256
#          bench/ort_gpu_parts.sh status       # which parts are there
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${ORT_GPU_VERSION:-1.31.1}  # built against CUDA 13 (libcudart.so.13, libcublas.so.13): bench/README.md
PART_MIB=${ORT_PART_MIB:-60}       # + the ~1 MiB working tree stays under the 64 MiB a call carries
STASH=${ORT_PARTS_DIR:-/tmp/ort-parts}
WHL=.whl-ort
PARTS=$WHL/parts

exclude() {  # keep .whl-ort/ out of git (works in a worktree too)
  local f; f=$(git rev-parse --git-path info/exclude 2>/dev/null) || return 0
  mkdir -p "$(dirname "$f")"; grep -qx '/.whl-ort/' "$f" 2>/dev/null || echo /.whl-ort/ >> "$f"
}

wheel_name() {  # the one onnxruntime_gpu wheel named by the parts' checksum file, or in .whl-ort/
  local sums
  sums=$(ls "$STASH"/*.sha256 "$PARTS"/*.sha256 2>/dev/null | head -1 || true)
  if [ -n "$sums" ]; then awk '{print $2}' "$sums"; return; fi
  ls $WHL/onnxruntime_gpu-*.whl 2>/dev/null | head -1 | xargs -r basename
}

case "${1:-}" in
  fetch)
    exclude
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d $WHL "onnxruntime-gpu==$VERSION"
    ls -l $WHL/onnxruntime_gpu-*.whl ;;
  split)
    exclude
    wheel=$(ls $WHL/onnxruntime_gpu-*.whl 2>/dev/null | head -1)
    [ -n "$wheel" ] || { echo "no $WHL/onnxruntime_gpu-*.whl: run '$0 fetch' first" >&2; exit 1; }
    name=$(basename "$wheel")
    rm -rf "$PARTS"; mkdir -p "$PARTS"
    split -b "${PART_MIB}M" -d -a 2 "$wheel" "$PARTS/$name.part-"
    (cd $WHL && sha256sum "$name") > "$PARTS/$name.sha256"
    ls -l "$PARTS"
    "$0" plan ;;
  plan)
    name=$(ls "$PARTS"/*.sha256 2>/dev/null | head -1 | xargs -r basename | sed 's/\.sha256$//')
    [ -n "$name" ] || { echo "no parts: run '$0 split' first" >&2; exit 1; }
    echo "device calls, each within ~30 s of the one before (the machine must stay warm):"
    for p in "$PARTS/$name".part-*; do
      echo "  run(carry=[\"$p\", \"$PARTS/$name.sha256\"], command=\"bench/ort_gpu_parts.sh stash\")"
    done
    echo "  run(command=\"bench/ort_gpu_parts.sh join && bench/gpu_check.sh \$OUT\", timeout_s=600)"
    echo "(the last part may instead travel with that final call: carry it there and run 'stash && join && gpu_check')" ;;
  stash)
    mkdir -p "$STASH"
    found=0
    for p in "$PARTS"/*; do [ -f "$p" ] && cp -f "$p" "$STASH/" && found=1; done
    [ $found = 1 ] || echo "no carried parts in $PARTS" >&2
    "$0" status ;;
  status)
    name=$(wheel_name)
    echo "wheel: ${name:-unknown}"
    ls -l "$STASH" "$PARTS" 2>/dev/null || true ;;
  join)
    "$0" stash >/dev/null 2>&1 || true
    name=$(wheel_name)
    [ -n "$name" ] && [ -f "$STASH/$name.sha256" ] || { echo "join: no $STASH/*.sha256 (stash the parts first)" >&2; exit 1; }
    ls "$STASH/$name".part-* >/dev/null 2>&1 || { echo "join: no parts of $name in $STASH" >&2; exit 1; }
    mkdir -p $WHL
    cat "$STASH/$name".part-* > "$WHL/$name"
    if (cd $WHL && sha256sum -c --quiet "$STASH/$name.sha256"); then
      echo "joined $WHL/$name ($(du -h "$WHL/$name" | cut -f1)), sha256 ok"
    else
      echo "join: sha256 mismatch: a part is missing or damaged ($(ls "$STASH/$name".part-* | wc -l) parts in $STASH)" >&2
      rm -f "$WHL/$name"; exit 1
    fi ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
