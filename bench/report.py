"""Ratio tables for the fused CORAL op (markdown), for bench/RESULTS.md.

Two sources:

* ``--run`` (default): measures the CPU comparisons itself, *interleaved*: every round times
  each implementation once, in turn, so load from other processes on a shared machine hits
  all of them alike. Reports the median per-call time and ratios vs the eager reference.
* ``--json FILE``: turns a pytest-benchmark JSON (bench/test_bench_coral.py) into the same
  table, from each benchmark's median.

    python bench/report.py --threads 1 --rounds 7
    python bench/report.py --threads 1 --modes fwd+bwd --batches 256 65536 --levels 5
    python bench/report.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.coral_cases import (
    BATCHES,
    CPU_ELEMENT_LIMIT,
    LEVELS,
    MODES,
    auto_route,
    checked_route,
    impls_for,
    make_call,
    make_inputs,
    peak_bytes,
)


def _time_once(call, min_seconds: float) -> float:
    """Seconds per call: repeat the call until min_seconds have passed (at least once)."""
    n, start = 0, time.perf_counter()
    while True:
        call()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n


def measure(
    device: torch.device,
    rounds: int,
    min_seconds: float,
    full: bool,
    modes: tuple[str, ...] = MODES,
    batches: tuple[int, ...] = BATCHES,
    levels_list: tuple[int, ...] = LEVELS,
) -> list[dict]:
    rows = []
    impls = impls_for(device)
    for mode in modes:
        for batch in batches:
            for levels in levels_list:
                if batch * (levels - 1) > CPU_ELEMENT_LIMIT and not full:
                    continue
                logit, bias, labels = make_inputs(batch, levels, device)
                calls = {impl: make_call(impl, mode, logit, bias, labels) for impl in impls}
                for impl, call in calls.items():
                    checked_route(impl, call)  # warm up (compiles "compiled"); the route must be impl
                times: dict[str, list[float]] = defaultdict(list)
                for _ in range(rounds):
                    for impl, call in calls.items():
                        times[impl].append(_time_once(call, min_seconds))
                for impl, call in calls.items():
                    # On CPU, peak memory is counted with a TorchDispatchMode, under which a
                    # torch.compile'd function does not run its compiled graph: no figure then.
                    skip = impl == "compiled" and device.type == "cpu"
                    mem = None if skip else peak_bytes(call, device)
                    rows.append(
                        dict(mode=mode, batch=batch, levels=levels, impl=impl, seconds=statistics.median(times[impl]),
                             peak_bytes=mem)
                    )  # fmt: skip
                print(f"measured {mode} B={batch} K={levels}: each impl ran itself; impl=auto takes "
                      f"{auto_route(device, batch)}", file=sys.stderr, flush=True)  # fmt: skip
    return rows


def rows_from_json(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    rows = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "mode" not in info:
            continue
        rows.append(
            dict(mode=info["mode"], batch=info["batch"], levels=info["levels"], impl=info["impl"],
                 seconds=bench["stats"]["median"], peak_bytes=info.get("peak_bytes"))
        )  # fmt: skip
    return rows


def training_steps_from_json(path: Path) -> dict[str, float]:
    """Median seconds of one quick-preset training step per loss implementation."""
    data = json.loads(path.read_text())
    return {
        b["extra_info"]["impl"]: b["stats"]["median"]
        for b in data["benchmarks"]
        if b["name"].startswith("test_training_step") and "impl" in b.get("extra_info", {})
    }


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def _fmt_mem(nbytes: int | None) -> str:
    if nbytes is None:
        return "n/a"
    return f"{nbytes / 2**20:,.1f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:,.1f} KiB"


def markdown(rows: list[dict]) -> str:
    """One line per case: times, ratios vs eager and vs compiled, peak memory."""
    cases: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        cases[(r["mode"], r["batch"], r["levels"])][r["impl"]] = r
    impls = [i for i in ("reference", "compiled", "cpp", "triton") if any(i in c for c in cases.values())]
    fast = [i for i in ("cpp", "triton") if i in impls]
    head = ["mode", "B", "K"] + [f"{i} time" for i in impls]
    head += [f"{f} vs eager" for f in fast] + [f"{f} vs compiled" for f in fast if "compiled" in impls]
    head += [f"{i} peak mem" for i in impls]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (mode, batch, levels), by in sorted(cases.items(), key=lambda kv: (kv[0][0] != "fwd", kv[0][1], kv[0][2])):
        cells = [mode, f"{batch:,}", str(levels)]
        cells += [_fmt_time(by[i]["seconds"]) if i in by else "-" for i in impls]
        for f in fast:
            ok = f in by and "reference" in by
            cells.append(f"**{by['reference']['seconds'] / by[f]['seconds']:.1f}x**" if ok else "-")
        for f in fast:
            if "compiled" in impls:
                ok = f in by and "compiled" in by
                cells.append(f"{by['compiled']['seconds'] / by[f]['seconds']:.1f}x" if ok else "-")
        cells += [_fmt_mem(by[i]["peak_bytes"]) if i in by else "-" for i in impls]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), load average {os.getloadavg()[0]:.1f} at the end"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="pytest-benchmark JSON to convert instead of measuring")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (median)")
    parser.add_argument("--min-seconds", type=float, default=0.05, help="minimum timing window per measurement")
    parser.add_argument("--full", action="store_true", help="also the cases above CPU_ELEMENT_LIMIT")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="subset of modes")
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES), help="subset of batch sizes")
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS), help="subset of K")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.json:
        rows = rows_from_json(args.json)
        print(markdown(rows))
        steps = training_steps_from_json(args.json)
        if steps:
            print("\n| training step (quick preset) | median | vs eager-reference step |\n|---|---|---|")
            for impl, sec in steps.items():
                ratio = steps["reference"] / sec if "reference" in steps else float("nan")
                print(f"| {impl} | {_fmt_time(sec)} | {ratio:.2f}x |")
        info = json.loads(args.json.read_text()).get("machine_info", {})
        print(f"\nMachine (from the JSON): {info.get('cpu', {}).get('brand_raw', '?')}, {info.get('node', '?')}.")
        return
    rows = measure(
        torch.device(args.device), args.rounds, args.min_seconds, args.full,
        tuple(args.modes), tuple(args.batches), tuple(args.levels),
    )  # fmt: skip
    print(markdown(rows))
    print(f"\nMachine: {machine()}.")


if __name__ == "__main__":
    main()
