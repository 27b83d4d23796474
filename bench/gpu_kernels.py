"""GPU kernel checks for the fused CORAL op (run by bench/gpu_check.sh; needs CUDA).

1. Latency at B=256, K=5, forward+backward: Triton (and the CUDA C++ op, and
   torch.compile(reference)) vs the eager reference. Target: Triton >= 3x eager.
2. Bandwidth at B >= 16M, K=5: achieved bytes/s of the Triton loss (forward kernel, and
   forward+backward), as a share of the H200's ~4.8 TB/s HBM. Target: >= 70 %.
   Bytes moved are counted from what the kernels must read and write:
   forward reads g (4 B fp32) and the label (8 B int64) and writes dg (4 B) per row;
   backward reads dg and writes the gradient (4 + 4 B per row). Per-program partials
   (K-1 floats per 4096/(K-1) rows) are negligible and not counted.

    python bench/gpu_kernels.py --out results_dir
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import bookcover.coral as coral
from bench.coral_cases import make_call, make_inputs

HBM_BYTES_PER_S = 4.8e12  # H200 (HBM3e) peak


def cuda_time(fn, iters: int, warmup: int = 10) -> float:
    """Median seconds per call over `iters` calls timed with CUDA events (5 repeats)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / 1e3 / iters)
    return sorted(samples)[len(samples) // 2]


def latency(device: torch.device, impls: list[str]) -> dict:
    logit, bias, labels = make_inputs(256, 5, device)
    out = {}
    for impl in impls:
        call = make_call(impl, "fwd+bwd", logit, bias, labels)
        out[impl] = cuda_time(call, iters=200)
    return out


def bandwidth(device: torch.device, batch: int) -> dict:
    from bookcover.coral import triton_ops

    gen = torch.Generator(device=device).manual_seed(0)
    logit = torch.randn(batch, device=device, generator=gen)
    bias = torch.linspace(1.0, -1.0, 4, device=device)
    labels = torch.randint(0, 5, (batch,), device=device, generator=gen)
    grad = torch.ones((), device=device)

    def fwd():
        return triton_ops.coral_loss_fwd(logit, bias, labels, None, True, False)

    def fwd_bwd():
        _, dg_, db_, _, _ = fwd()
        triton_ops.coral_grad_scale(dg_, grad, torch.float32)

    t_fwd = cuda_time(fwd, iters=20)
    t_all = cuda_time(fwd_bwd, iters=20)
    fwd_bytes = batch * (4 + 8 + 4)
    all_bytes = fwd_bytes + batch * (4 + 4)
    return {
        "batch": batch,
        "levels": 5,
        "forward": {"seconds": t_fwd, "bytes": fwd_bytes, "TB/s": fwd_bytes / t_fwd / 1e12,
                    "pct_of_hbm": 100 * fwd_bytes / t_fwd / HBM_BYTES_PER_S},
        "forward+backward": {"seconds": t_all, "bytes": all_bytes, "TB/s": all_bytes / t_all / 1e12,
                             "pct_of_hbm": 100 * all_bytes / t_all / HBM_BYTES_PER_S},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_kernels.py needs a CUDA GPU")
    device = torch.device("cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"gpu": torch.cuda.get_device_name(device)}

    def save() -> None:  # after every part, so a timeout still leaves what was measured
        (args.out / "coral_kernels.json").write_text(json.dumps(result, indent=2))

    result["bandwidth"] = [bandwidth(device, b) for b in (16 * 2**20, 64 * 2**20)]
    save()
    impls = ["reference", "triton"] + (["cpp"] if coral.resolve_impl("cpp", device) == "cpp" else [])
    seconds = latency(device, impls)
    result["latency"] = {"case": "fwd+bwd B=256 K=5", "seconds": seconds}
    save()
    seconds.update(latency(device, ["compiled"]))  # last: inductor compiles for a while
    result["latency"]["speedup_vs_eager"] = {k: seconds["reference"] / v for k, v in seconds.items()}
    save()
    lat = result["latency"]
    lines = [f"GPU: {result['gpu']}", "", "| impl | fwd+bwd B=256 K=5 | vs eager |", "|---|---|---|"]
    for impl, sec in lat["seconds"].items():
        lines.append(f"| {impl} | {sec * 1e6:.1f} µs | {lat['speedup_vs_eager'][impl]:.2f}x |")
    lines += ["", "| B | pass | time | TB/s | % of 4.8 TB/s |", "|---|---|---|---|---|"]
    for bw in result["bandwidth"]:
        for name in ("forward", "forward+backward"):
            r = bw[name]
            ms, tbs, pct = r["seconds"] * 1e3, r["TB/s"], r["pct_of_hbm"]
            cells = [f"{bw['batch']:,}", name, f"{ms:.3f} ms", f"{tbs:.2f}", f"{pct:.0f} %"]
            lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    (args.out / "coral_kernels.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
