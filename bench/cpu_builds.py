"""Two builds of the C++ op side by side: the fused CORAL op vs the eager reference, per build.

Two builds of bookcover._C cannot load into one process (both register the same op names), so
each build runs in its own child process, and the children alternate round by round: load from
other processes on a shared machine hits every build alike. In each child the eager reference
and the C++ op are timed interleaved; the table reports, per build, the median over rounds of
the per-call times and of the ratio reference / cpp.

    python bench/cpu_builds.py --build before=/path/to/old/_C.so --build after=bookcover/_C.so \\
        --build after-baseline=bookcover/_C.so@default --rounds 5

``PATH@default`` runs that build with ATEN_CPU_CAPABILITY=default (its portable kernels).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(so_path: str, batches: list[int], levels: int, mode: str, reps: int, min_seconds: float) -> dict:
    """Time reference and cpp with the given library loaded as bookcover._C."""
    import torch

    spec = importlib.util.spec_from_file_location("bookcover._C", so_path)
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    sys.modules["bookcover._C"] = lib
    sys.path.insert(0, str(REPO))
    from bench.coral_cases import make_call, make_inputs
    from bench.report import _time_once

    out = {"capability": getattr(lib, "cpu_capability", lambda: "n/a (no cpu_capability)")(), "cases": {}}
    for batch in batches:
        inputs = make_inputs(batch, levels, torch.device("cpu"))
        calls = {impl: make_call(impl, mode, *inputs) for impl in ("reference", "cpp")}
        for call in calls.values():
            call()
        times: dict[str, list[float]] = {impl: [] for impl in calls}
        for _ in range(reps):
            for impl, call in calls.items():
                times[impl].append(_time_once(call, min_seconds))
        out["cases"][str(batch)] = {impl: statistics.median(t) for impl, t in times.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="append", default=[], metavar="LABEL=PATH[@default]")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 65_536])
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--mode", default="fwd+bwd", choices=["fwd", "fwd+bwd"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3, help="interleaved timings per child (median)")
    parser.add_argument("--min-seconds", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        json.dump(_child(args.child, args.batches, args.levels, args.mode, args.reps, args.min_seconds), sys.stdout)
        return 0

    sys.path.insert(0, str(REPO))
    from bench.report import _fmt_time as _fmt
    from bench.report import machine

    builds = []
    for spec in args.build:
        label, _, path = spec.partition("=")
        path, _, cap = path.partition("@")
        builds.append((label, str(Path(path).resolve()), cap or None))
    results: dict[str, list[dict]] = {label: [] for label, _, _ in builds}
    for r in range(args.rounds):
        for label, path, cap in builds[r % len(builds):] + builds[: r % len(builds)]:
            env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
            if cap:
                env["ATEN_CPU_CAPABILITY"] = cap
            cmd = [sys.executable, __file__, "--child", path, "--levels", str(args.levels), "--mode", args.mode,
                   "--reps", str(args.reps), "--min-seconds", str(args.min_seconds), "--threads", str(args.threads),
                   "--batches", *map(str, args.batches)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            results[label].append(json.loads(done.stdout))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    import torch

    torch.set_num_threads(args.threads)  # as in the children, so machine() says what they ran with
    print(f"{machine()}; {args.mode}, K={args.levels}, median of {args.rounds} rounds\n")
    print("| build | CPU kernels | B | reference time | cpp time | cpp vs eager |")
    print("|---|---|---|---|---|---|")
    for label, _, _ in builds:
        runs = results[label]
        for batch in map(str, args.batches):
            ref = statistics.median(run["cases"][batch]["reference"] for run in runs)
            cpp = statistics.median(run["cases"][batch]["cpp"] for run in runs)
            ratio = statistics.median(run["cases"][batch]["reference"] / run["cases"][batch]["cpp"] for run in runs)
            print(f"| {label} | {runs[0]['capability']} | {int(batch):,} | {_fmt(ref)} | {_fmt(cpp)} | **{ratio:.2f}x** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
