"""Where a fresh `explain` process spends its cold start (issue 10, item 6), phase by phase.

`bookcover-fast explain` of one cover took 14.2 s as a fresh process on the H200 machine, of
which the GPU work is ~0.1 s. This script runs the same steps as the CLI, in the same order, in
one fresh process, and times each one:

    interpreter     process start -> first line of this script (Linux: from /proc)
    import torch    torch and its CUDA libraries
    device init     the CUDA context (first tensor on the device); 0 on CPU
    import explain  the package's explain modules and what they pull in (PIL, scikit-image, ...)
    worker pool     starting the segmentation workers (they import their libraries meanwhile)
    load model      the checkpoint, the ResNet-34 on the device
    first cover     explain of cover 1: segmentation, LIME's model calls (cuDNN picks algorithms
                    for each new batch shape), faithfulness, overlays and report
    second cover    the same for cover 2, everything warm

and ``-X importtime``-style totals are not used: they would slow the imports they measure.

    python bench/explain_startup.py --checkpoint run/best.pt --images covers/ --json out.json
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def seconds_since_process_start() -> float | None:
    """Seconds from this process's start to now (Linux /proc), None elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main(argv: list[str] | None = None) -> dict:
    interpreter = seconds_since_process_start()
    if interpreter is not None:
        interpreter -= time.perf_counter() - T0  # up to the script's first line
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="a folder with at least two covers")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=int, default=5000, help="LIME perturbations per cover (the CLI's default)")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--json", type=Path, help="write the phases here too")
    args = parser.parse_args(argv)

    phases: dict[str, float | None] = {"interpreter": interpreter}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    import torch

    phase("import torch")
    from bookcover.devices import resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.zeros(1, device=device)
        torch.cuda.synchronize(device)
    phase("device init")
    from bookcover.data.images import find_images
    from bookcover.explain.adapters import load_model
    from bookcover.explain.prepare import CoverPipeline, ExplainOptions, resolve_workers
    from bookcover.explain.run import explain_covers

    phase("import explain")
    covers = find_images(args.images)[:2]
    if len(covers) < 2:
        sys.exit(f"explain_startup.py: {args.images} needs at least two covers")
    options = ExplainOptions(samples=args.samples)
    with tempfile.TemporaryDirectory() as tmp, CoverPipeline(resolve_workers(args.workers, device.type, 2)) as pipe:
        phase("worker pool")
        model = load_model(args.checkpoint, None, str(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        phase("load model")
        for i, cover in enumerate(covers):
            explain_covers(model, [cover], Path(tmp) / f"c{i}", options, quiet=True, pipeline=pipe)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            phase("first cover" if i == 0 else "second cover")
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "samples": args.samples,
        "phases_s": phases,
        "total_in_script_s": time.perf_counter() - T0,
    }
    width = max(map(len, phases))
    for name, secs in phases.items():
        print(f"{name:<{width}}  {'-' if secs is None else f'{secs:7.2f} s'}")
    print(f"{'total':<{width}}  {sum(s for s in phases.values() if s):7.2f} s  ({result['device']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
