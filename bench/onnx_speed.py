"""onnxruntime vs eager PyTorch for the CORAL classifier, measured side by side in one run.

Both sides do the same work: uint8 center crops (B, crop, crop, 3) in, probas/rank/level_probs
out, normalisation included. Calls alternate eager/ORT round by round, so load from other
processes on a shared machine hits both alike; the table reports medians and their ratio.

    python bench/onnx_speed.py [--crop 120] [--threads 2] [--providers CUDAExecutionProvider]

The weights are random (seeded) with batch-norm statistics calibrated on one random batch, so
activations and probabilities are in a realistic range (an uncalibrated random ResNet-34
saturates every probability). Speed does not depend on what the network learned, and no
checkpoint is needed. Parity on the benchmark inputs is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookcover.classifier.model import CoralResNet34
from bookcover.data.batches import normalise
from bookcover.export import OUTPUT_NAMES, OnnxClassifier, export_onnx

# (batch, warm-up calls, timed rounds): batch 64 of 120 px ResNet-34 takes seconds on 2 cores.
PLAN = ((1, 5, 30), (64, 1, 5))


@dataclass
class Pair:
    """The two implementations under test, ready to call on the same uint8 crops."""

    eager: Callable[[np.ndarray], dict[str, np.ndarray]]
    ort: Callable[[np.ndarray], dict[str, np.ndarray]]
    providers: list[str]


def calibrate_batchnorm(model: torch.nn.Module, crop: int, batch: int = 16) -> None:
    """Set BN running stats to those of one random batch (cumulative average), then eval()."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(normalise(torch.from_numpy(pixels(batch, crop, seed=2))))
    model.eval()


def build_pair(crop: int = 120, threads: int = 2, folder: str | Path | None = None,
               providers: list[str] | None = None, seed: int = 0, device: str = "cpu") -> Pair:
    """Export a seeded random CoralResNet34 and wrap eager (channels_last, inference_mode, on
    `device`) and an onnxruntime session (all graph optimisations, `threads` intra-op threads).

    Both sides take host uint8 arrays and return host arrays, so on a GPU both pay the copies.
    """
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and "CUDAExecutionProvider" in (providers or []):
        ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels torch brought, if they match

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = CoralResNet34(num_levels=5)
    calibrate_batchnorm(model, crop)
    folder = Path(folder or tempfile.mkdtemp(prefix="bookcover-onnx-bench-"))
    path = export_onnx(model, crop, folder / "model.onnx", {"bookcover.bench": True})
    wrapper = OnnxClassifier(model.to(device, memory_format=torch.channels_last)).eval()

    def eager(pixels: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = wrapper(torch.from_numpy(pixels).to(device))
        return {name: t.cpu().numpy() for name, t in zip(OUTPUT_NAMES, out, strict=True)}

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # TF32 off on CUDA: the contract's 1e-4 parity is an fp32 promise.
    chosen = [(p, {"use_tf32": "0"}) if p == "CUDAExecutionProvider" else p
              for p in (providers or ["CPUExecutionProvider"])]
    session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)

    def run_ort(pixels: np.ndarray) -> dict[str, np.ndarray]:
        got = session.run(list(OUTPUT_NAMES), {"pixels": pixels})
        return dict(zip(OUTPUT_NAMES, got, strict=True))

    return Pair(eager, run_ort, session.get_providers())


def pixels(batch: int, crop: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, crop, crop, 3), dtype=np.uint8)


def measure(pair: Pair, batch: int, crop: int, warmup: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of each side, alternating calls round by round."""
    x = pixels(batch, crop)
    for _ in range(warmup):
        pair.eager(x)
        pair.ort(x)
    times: dict[str, list[float]] = {"eager": [], "ort": []}
    for _ in range(rounds):
        for name, fn in (("eager", pair.eager), ("ort", pair.ort)):
            t0 = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - t0)
    a, b = pair.eager(x), pair.ort(x)
    return {
        "batch": batch,
        "eager_s": statistics.median(times["eager"]),
        "ort_s": statistics.median(times["ort"]),
        "probas_max_abs_diff": float(np.abs(a["probas"] - b["probas"]).max()),
        "ranks_equal": bool((a["rank"] == b["rank"]).all()),
    }


def table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| batch | eager latency (ms) | ORT latency (ms) | eager img/s | ORT img/s | speed-up | probas diff |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b = r["batch"]
        lines.append(
            f"| {b} | {r['eager_s'] * 1e3:.1f} | {r['ort_s'] * 1e3:.1f} | {b / r['eager_s']:.1f} | "
            f"{b / r['ort_s']:.1f} | **{r['eager_s'] / r['ort_s']:.2f}x** | {r['probas_max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=120, help="input size (the study: 120)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads = ORT intra-op threads")
    parser.add_argument("--providers", nargs="*", default=None, help="ORT providers (default CPU)")
    parser.add_argument("--device", default="cpu", help="eager PyTorch device (cuda for the GPU check)")
    parser.add_argument("--batches", type=int, nargs="*", default=None, help="batch sizes (default 1 64)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke run)")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    pair = build_pair(args.crop, args.threads, providers=args.providers, device=args.device)
    plan = list(PLAN) if not args.batches else [(b, 3, 20) for b in args.batches]
    if args.quick:
        plan = [(b, min(w, 1), min(r, 3)) for b, w, r in plan]
    rows = [measure(pair, b, args.crop, w, r) for b, w, r in plan]
    import onnxruntime as ort

    print(f"crop {args.crop}, {args.threads} threads, eager on {args.device}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__} "
          f"{pair.providers}, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(table(rows))


if __name__ == "__main__":
    main()
