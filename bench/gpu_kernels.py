"""Kernel checks for the fused CORAL op, side by side in one run (bench/gpu_check.sh runs it).

1. Latency at B=256, K=5: forward (loss under no_grad) and forward+backward, for the eager
   reference, torch.compile(reference), Triton, the C++ op and ``auto`` (the route the
   dispatch table picks, printed beside it), each through ``bookcover.coral.coral_loss``
   (dispatch included). Target on the H200: Triton fwd+bwd >= 3x eager. Each row names the
   route that ran (``bookcover.coral.last_route``): an impl never times another one.
2. Bandwidth at B = 16M and 64M, K=5, for the fused ops: the training forward (loss + dL/dg),
   the forward without gradients, and forward+backward. Bytes are counted from what the
   kernels must move: g (4 B fp32) and the label (8 B int64) read, dg (4 B) written in the
   training forward; backward reads dg and writes the gradient (4 + 4 B). Per-program partial
   sums (K floats per program, one wave of programs) are not counted. Each row shows the call
   time (CUDA events, dispatch included) and, beside it, the kernel-only time from
   torch.profiler (sum of the GPU kernels per call). Target: forward >= 70 % of 4.8 TB/s.
3. Crossover (CUDA): eager fwd+bwd of the C++ op and Triton at B = 256 ... 16M, K=5, side by
   side, with the route ``auto`` takes at each size: where Triton overtakes the C++ op is the
   dispatch table's EAGER_CUDA_CROSSOVER (bookcover/coral/dispatch.py, bench/RESULTS.md).

Results go to OUT/coral_kernels.json after every part (a timeout keeps what was measured) and
OUT/coral_kernels.md at the end.

    python bench/gpu_kernels.py --out results_dir                 # CUDA
    python bench/gpu_kernels.py --out /tmp/k --device cpu         # CPU: reference, compiled, cpp
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import bookcover.coral as coral
from bench.coral_cases import auto_route, checked_route, impls_for, make_call, make_inputs
from bookcover.coral import dispatch

HBM_BYTES_PER_S = 4.8e12  # H200 (HBM3e) peak
LEVELS = 5
ORDER = ("reference", "compiled", "triton", "cpp")
CROSSOVER_BATCHES = (256, 4096, 65_536, 1 << 20, 1 << 22, 1 << 24)
ROUNDS = 9  # latency rounds: the B=256 ratios are read off their median and spread


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(fn: Callable[[], object], device: torch.device, iters: int) -> float:
    """Seconds per call over `iters` back-to-back calls (CUDA events on a GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1e3 / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def interleaved(calls: dict[str, Callable[[], object]], device: torch.device, iters: int, rounds: int = 5) -> dict:
    """Median seconds per call of each callable; every round times each one once, in turn, so
    drifting load (a shared machine, GPU clocks) hits them all alike."""
    return {name: statistics.median(s) for name, s in interleaved_rounds(calls, device, iters, rounds).items()}


def interleaved_rounds(calls: dict[str, Callable[[], object]], device: torch.device, iters: int,
                       rounds: int = 5) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per call of each callable in each round (see interleaved)."""
    for fn in calls.values():  # warm up (compiles "compiled", JITs the Triton kernels)
        for _ in range(3):
            fn()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            samples[name].append(time_per_call(fn, device, iters))
    return samples


def profiled_kernels(fn: Callable[[], object], device: torch.device, iters: int) -> dict:
    """Kernel-only time per call from torch.profiler: GPU kernels on CUDA, the ops' own (self)
    CPU time on CPU. Returns {"seconds": per call, "kernels": {name: seconds per call}}."""
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
    fn()
    _sync(device)
    with profile(activities=[activity]) as prof:
        for _ in range(iters):
            fn()
        _sync(device)
    per_kernel: dict[str, float] = {}
    for ev in prof.key_averages():
        if device.type == "cuda":
            us = getattr(ev, "self_device_time_total", None)
            if us is None:
                us = getattr(ev, "self_cuda_time_total", 0.0)
            if getattr(ev, "device_type", None) is not None and "CUDA" not in str(ev.device_type):
                continue
        else:
            us = ev.self_cpu_time_total
        if us and us > 0:
            per_kernel[ev.key] = us / 1e6 / iters
    return {"seconds": sum(per_kernel.values()), "kernels": dict(sorted(per_kernel.items(), key=lambda kv: -kv[1])[:8])}


def latency(device: torch.device, impls: list[str], batch: int, iters: int) -> dict:
    """Median seconds per call of each impl and of "auto", fwd and fwd+bwd, and the routes that ran."""
    logit, bias, labels = make_inputs(batch, LEVELS, device)
    out: dict = {"routes": {}}
    for mode in ("fwd", "fwd+bwd"):
        calls = {impl: make_call(impl, mode, logit, bias, labels) for impl in [*impls, "auto"]}
        for impl, call in calls.items():
            out["routes"][impl] = checked_route(impl, call)
        rounds = interleaved_rounds(calls, device, iters, ROUNDS)
        out[mode] = {name: statistics.median(r) for name, r in rounds.items()}
        out[f"{mode} rounds"] = rounds
    return out


def crossover(device: torch.device, impls: list[str], batches: tuple[int, ...], iters: int) -> list[dict]:
    """Eager fwd+bwd per call of each fused impl at each batch size, and auto's route there."""
    rows = []
    for batch in batches:
        logit, bias, labels = make_inputs(batch, LEVELS, device)
        calls = {impl: make_call(impl, "fwd+bwd", logit, bias, labels) for impl in impls}
        for impl, call in calls.items():
            checked_route(impl, call)
        n = max(3, min(iters, int(iters * 65_536 / batch)))  # fewer calls for the big batches
        times = interleaved(calls, device, n, rounds=3)
        rows.append({"batch": batch, "auto": auto_route(device, batch), "seconds": times})
    return rows


def host_breakdown(device: torch.device, impls: list[str], batch: int, iters: int) -> dict:
    """Where the host time of the B=256 call goes, for the next reader of a missed target.

    launch_only: the forward with gradients under no_grad (no autograd node, no backward), per
    way of launching it: the C++ op and Triton's Python launcher. profiles: torch.profiler's CPU
    events of one fwd+bwd (self time per call, top 8) for each fused impl.
    """
    from torch.profiler import ProfilerActivity, profile

    logit, bias, labels = make_inputs(batch, LEVELS, device)
    launch_only: dict[str, Callable[[], object]] = {}
    if "cpp" in impls:
        launch_only["cpp op"] = lambda: torch.ops.bookcover.coral_loss_fwd.default(logit, bias, labels, None, True, False)
    if "triton" in impls:
        from bookcover.coral import triton_ops

        launch_only["triton, Python launcher"] = lambda: triton_ops.loss_fwd(logit, bias, labels, None, True, False)
    fwd_bwd = {name: make_call(name, "fwd+bwd", logit, bias, labels) for name in ("cpp", "triton") if name in impls}

    def no_grad(fn: Callable[[], object]) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad():
                fn()

        return call

    times = interleaved({name: no_grad(fn) for name, fn in launch_only.items()}, device, iters) if launch_only else {}
    profiles = {}
    n = max(iters // 4, 5)
    for name, fn in fwd_bwd.items():
        fn()
        _sync(device)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                fn()
            _sync(device)
        events = sorted(prof.key_averages(), key=lambda ev: -ev.self_cpu_time_total)[:8]
        profiles[name] = {ev.key: ev.self_cpu_time_total / 1e6 / n for ev in events}
    return {"batch": batch, "launch_only": times, "profiles": profiles}


def _bytes(batch: int, pass_: str, label_bytes: int = 8) -> int:
    fwd_nograd = batch * (4 + label_bytes)
    fwd_train = fwd_nograd + batch * 4
    return {"forward (no grad)": fwd_nograd, "forward (train)": fwd_train, "forward+backward": fwd_train + batch * 8}[pass_]


def bandwidth(device: torch.device, impls: list[str], batch: int, iters: int) -> list[dict]:
    """Call and kernel time, bytes/s and % of peak, per fused impl and pass, at one batch size."""
    gen = torch.Generator(device=device).manual_seed(0)
    logit = torch.randn(batch, device=device, generator=gen)
    bias = torch.linspace(1.0, -1.0, LEVELS - 1, device=device)
    labels = torch.randint(0, LEVELS, (batch,), device=device, generator=gen)
    g = logit.clone().requires_grad_()

    def passes(impl: str) -> dict[str, Callable[[], object]]:
        def nograd():
            with torch.no_grad():
                return coral.coral_loss(logit, bias, labels, impl=impl)

        def train():
            return coral.coral_loss(g, bias, labels, impl=impl)

        def both():
            g.grad = None
            coral.coral_loss(g, bias, labels, impl=impl).backward()

        return {"forward (no grad)": nograd, "forward (train)": train, "forward+backward": both}

    rows = []
    for impl in impls:
        calls = passes(impl)
        call_times = interleaved(calls, device, iters, rounds=3)
        for name, fn in calls.items():
            kern = profiled_kernels(fn, device, iters)
            nbytes = _bytes(batch, name)
            t_call, t_kern = call_times[name], kern["seconds"]
            rows.append({
                "impl": impl, "batch": batch, "levels": LEVELS, "pass": name, "bytes": nbytes,
                "call_seconds": t_call, "kernel_seconds": t_kern, "kernels": kern["kernels"],
                "TB/s_call": nbytes / t_call / 1e12, "TB/s_kernel": nbytes / t_kern / 1e12 if t_kern else None,
                "pct_of_hbm_call": 100 * nbytes / t_call / HBM_BYTES_PER_S,
                "pct_of_hbm_kernel": 100 * nbytes / t_kern / HBM_BYTES_PER_S if t_kern else None,
            })  # fmt: skip
    return rows


def markdown(result: dict) -> str:
    lines = [f"Device: {result['device_name']}", ""]
    lat = result.get("latency")
    if lat:
        routes = lat.get("routes", {})
        names = [i for i in ORDER if i in lat["fwd"]] + [i for i in ("auto",) if i in lat["fwd"]]
        lines += [f"Latency, B={lat['batch']} K={LEVELS} (median per call, dispatch included):", "",
                  "| impl | route that ran | fwd | fwd vs eager | fwd+bwd | fwd+bwd vs eager |",
                  "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for impl in names:
            f, fb = lat["fwd"][impl], lat["fwd+bwd"][impl]
            rf, rfb = lat["fwd"]["reference"] / f, lat["fwd+bwd"]["reference"] / fb
            route = routes.get(impl, "?")
            lines.append(f"| {impl} | {route} | {f * 1e6:,.1f} µs | {rf:.2f}x | {fb * 1e6:,.1f} µs | {rfb:.2f}x |")
    cross = result.get("crossover")
    if cross:
        impls = [i for i in ORDER if i in cross[0]["seconds"]]
        lines += ["", f"Crossover, eager fwd+bwd, K={LEVELS} (dispatch: EAGER_CUDA_CROSSOVER = "
                  f"{dispatch.EAGER_CUDA_CROSSOVER:,} rows):", "",
                  "| B | " + " | ".join(impls) + " | faster | auto takes |", "|---:|" + "---:|" * len(impls) + "---|---|"]
        for r in cross:
            t = r["seconds"]
            faster = min(impls, key=lambda i: t[i])
            lines.append(f"| {r['batch']:,} | " + " | ".join(f"{t[i] * 1e6:,.1f} µs" for i in impls)
                         + f" | {faster} | {r['auto']} |")  # fmt: skip
    host = result.get("host")
    if host:
        lines += ["", f"Host time, B={host['batch']}: the forward with gradients alone (no autograd), per launch:", "",
                  "| launch | time |", "|---|---:|"]  # fmt: skip
        lines += [f"| {name} | {t * 1e6:,.1f} µs |" for name, t in host["launch_only"].items()]
        for name, events in host["profiles"].items():
            top = "; ".join(f"{k} {v * 1e6:.1f}" for k, v in events.items())
            lines.append(f"\nfwd+bwd {name}, CPU self time per call (µs), top events: {top}")
    bw = result.get("bandwidth")
    if bw:
        cuda = result["device"] == "cuda"
        unit, scale = ("TB/s", 1.0) if cuda else ("GB/s", 1e3)
        lines += ["", f"Bandwidth, K={LEVELS}, bytes counted as in the docstring"
                  + ("; % of the H200's 4.8 TB/s:" if cuda else " (CPU: no peak to compare with):"), "",
                  f"| B | impl | pass | call time | kernel time | {unit} (call) | {unit} (kernel) | % peak (call) | % peak (kernel) |",
                  "|---:|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in bw:
            kt = f"{r['kernel_seconds'] * 1e3:.3f} ms" if r["kernel_seconds"] else "-"
            tk = f"{r['TB/s_kernel'] * scale:.3f}" if r["TB/s_kernel"] else "-"
            pc = f"{r['pct_of_hbm_call']:.0f} %" if cuda else "-"
            pk = f"{r['pct_of_hbm_kernel']:.0f} %" if cuda and r["pct_of_hbm_kernel"] else "-"
            lines.append(f"| {r['batch']:,} | {r['impl']} | {r['pass']} | {r['call_seconds'] * 1e3:.3f} ms | {kt} | "
                         f"{r['TB/s_call'] * scale:.3f} | {tk} | {pc} | {pk} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="directory for coral_kernels.json/.md")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--impls", nargs="+", choices=ORDER, help="default: every impl that runs on the device")
    parser.add_argument("--batch", type=int, default=256, help="latency batch size")
    parser.add_argument("--bw-batches", nargs="+", type=int, help="bandwidth batch sizes (default: 16M 64M on CUDA, 1M on CPU)")
    parser.add_argument("--iters", type=int, help="calls per timing sample (default: 200 CUDA, 20 CPU)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("latency", "bandwidth", "crossover"),
                        help="parts to skip")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_kernels.py: no CUDA GPU here (use --device cpu for the CPU comparison)")
    available = impls_for(device)
    impls = [i for i in ORDER if i in (args.impls or available) and i in available]
    fused = [i for i in impls if i in ("triton", "cpp")]
    iters = args.iters or (200 if device.type == "cuda" else 20)
    bw_batches = args.bw_batches or ([16 * 2**20, 64 * 2**20] if device.type == "cuda" else [2**20])
    args.out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result: dict = {"device": device.type, "device_name": name, "torch": torch.__version__, "impls": impls}

    def save() -> None:  # after every part, so a timeout still leaves what was measured
        (args.out / "coral_kernels.json").write_text(json.dumps(result, indent=2))

    save()
    if "bandwidth" not in args.skip:  # first: the headline HBM figure
        result["bandwidth"] = []
        for batch in bw_batches:
            result["bandwidth"] += bandwidth(device, fused, batch, max(iters // 20, 3))
            save()
    if "latency" not in args.skip:
        fast = [i for i in impls if i != "compiled"]
        result["latency"] = {"batch": args.batch, **latency(device, fast, args.batch, iters)}
        save()
        result["host"] = host_breakdown(device, impls, args.batch, iters)
        save()
    if "crossover" not in args.skip and device.type == "cuda" and len(fused) == 2:
        result["crossover"] = crossover(device, fused, CROSSOVER_BATCHES, iters)
        save()
    if "latency" not in args.skip and "compiled" in impls:  # last: inductor compiles a while; re-time all beside it
        result["latency"] = {"batch": args.batch, **latency(device, impls, args.batch, iters)}
        save()
    text = markdown(result)
    (args.out / "coral_kernels.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
