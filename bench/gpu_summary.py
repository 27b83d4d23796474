"""Read what bench/gpu_check.sh left in its work folder and print one line per target.

    python bench/gpu_summary.py WORK_DIR     # appended to summary.txt by gpu_check.sh

Every figure comes from a file a step wrote; a step that wrote nothing reads "no result".
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pytest_counts(log: Path) -> str:
    """'N passed, N failed, N skipped, N errors' from pytest's last summary line."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no result"
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|skipped|error|errors|no tests ran)\b", line) and " in " in line:
            counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
            for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", line):
                counts["error" if what.startswith("error") else what] = int(n)
            return (f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped, "
                    f"{counts['error']} errors")
    return "no summary line (collection failed or killed?)"


def throughput(work: Path) -> list[str]:
    data = _json(work / "throughput.json")
    if not data:
        return ["throughput: no result"]
    rows = data["rows"]
    base = rows[0]["img_per_s"]
    out = [f"throughput ({data['machine']}, batch {data['batch']}, {data['crop']} px):"]
    for r in rows:
        out.append(f"  {r['variant']}: {r['img_per_s']:.0f} img/s ({r['img_per_s'] / base:.2f}x eager), "
                   f"warm-up {r['warmup_s']:.1f} s")
    d = data.get("train_default")
    if d:
        verdict = "MET" if d["img_per_s"] >= 22_000 else "not met"
        out.append(f"  target: train's default >= 22,000 img/s: {d['img_per_s']:.0f} -> {verdict}")
    return out


def train(work: Path) -> list[str]:
    run = work / "train"
    records = []
    try:
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        pass
    if not records:
        return ["train (paper preset): no result"]
    mode = (_json(run / "config.json") or {}).get("step_mode", "?")
    first = records[0]["epoch_seconds"]
    later = [r["images_per_second"] for r in records[1:]]
    steady = statistics.median(later) if later else float("nan")
    return [
        f"train (paper preset, 120 px, batch 256, step mode {mode}): epoch 1 {first:.1f} s "
        f"({'MET' if first <= 60 else 'not met'}: <= 60 s); epochs 2-{len(records)} median {steady:.0f} img/s "
        f"({'MET' if steady >= 20_000 else 'not met'}: >= 20,000); per epoch "
        + ", ".join(f"{r['images_per_second']:.0f}" for r in records)
    ]


def lime(work: Path) -> list[str]:
    out = []
    one = _json(work / "lime_gpu.json")
    if one:
        e2e = one.get("end_to_end_seconds_median")
        out.append(f"LIME 5,000 perturbations, ResNet-34: device {one['device_seconds_median']:.3f} s, end to end "
                   f"{'n/a' if e2e is None else f'{e2e:.3f} s'} (target < 0.15 s: {'MET' if one['meets_target'] else 'not met'})")
    else:
        out.append("LIME 5,000 perturbations: no result")
    many = _json(work / "lime_many.json")
    if many:
        p, i = many["pipeline"], many["inline"]
        out.append(f"explain, {many['covers']} covers x {many['samples']} samples, warm process: marginal "
                   f"{p['marginal_per_cover_s']:.3f} s/cover with {p['workers']} workers, "
                   f"{i['marginal_per_cover_s']:.3f} s inline (target <= 0.12 s: "
                   f"{'MET' if many['meets_target'] else 'not met'})")
    else:
        out.append("explain many covers (warm process): no result")
    cli = _json(work / "explain_cli.json")
    if cli:
        out.append(f"explain, fresh processes: 1 cover {cli['one_s']:.1f} s, {cli['n']} covers {cli['many_s']:.1f} s "
                   f"(CLI), marginal {cli['marginal_s']:.3f} s/cover")
    startup = _json(work / "explain_startup.json")
    if startup:
        phases = ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in startup["phases_s"].items())
        out.append(f"explain cold start by phase (s): {phases}")
    return out


def onnx(work: Path) -> list[str]:
    try:
        text = (work / "onnx_gpu.txt").read_text()
    except OSError:
        return ["onnxruntime-gpu: no result (see summary lines above)"]
    return ["onnxruntime-gpu:"] + ["  " + line for line in text.splitlines() if line.strip()][:12]


def gan(work: Path) -> list[str]:
    log = work / "gan_train.log"
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ["gan train: no result"]
    fell_back = "torch.compile failed" in text
    records = []
    try:
        records = [json.loads(x) for x in (work / "gan" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        pass
    epochs = [r for r in records if r.get("kind") == "epoch"]
    ips = ", ".join(f"{r['images_per_second']:.0f}" for r in epochs if r.get("images_per_second"))
    return [f"gan train (quick preset, default CUDA path): {len(epochs)} epochs, "
            f"{'FELL BACK to eager' if fell_back else 'compiled, no fallback'}; img/s per epoch: {ips or 'n/a'}"]


def triton_audit(work: Path) -> list[str]:
    """Registers and spills of every shipped Triton configuration, compiled by this machine's triton."""
    try:
        rows = [r for r in (work / "triton_audit.log").read_text().splitlines() if r.startswith("| ") and "---" not in r]
    except OSError:
        return ["triton audit: no result"]
    table = [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:]]
    if not table:
        return ["triton audit: no configurations compiled (see triton_audit.log)"]
    regs = [int(c[2]) for c in table]
    spilled = [c[1] for c in table if c[3] != "0/0"]
    return [f"triton audit (sm_90a, this machine's triton): {len(table)} configurations, registers {min(regs)}-{max(regs)} "
            f"(limit 128), {len(spilled)} spilling{': ' + '; '.join(spilled[:3]) if spilled else ''}"]


def coral(work: Path) -> list[str]:
    """The fused CORAL op's targets at B=256 (fwd+bwd) and the Triton forward's HBM share."""
    data = _json(work / "coral_kernels.json")
    if not data:
        return ["fused CORAL op: no result"]
    out = []
    lat = data.get("latency")
    if lat and "reference" in lat.get("fwd+bwd", {}):
        fb = lat["fwd+bwd"]
        row = ", ".join(f"{name} {t * 1e6:.0f} us" for name, t in fb.items())
        out.append(f"fused CORAL op, B={lat['batch']} fwd+bwd: {row}")
        routes = lat.get("routes", {})
        if "triton" in fb:
            vs_eager = fb["reference"] / fb["triton"]
            out.append(f"  triton: {vs_eager:.2f}x eager (target >= 3x: {'MET' if vs_eager >= 3 else 'not met'})")
        if "auto" in fb:
            out.append(f"  auto took route {routes.get('auto', '?')}: {fb['reference'] / fb['auto']:.2f}x eager")
    for r in data.get("crossover", []):
        t = r["seconds"]
        row = ", ".join(f"{name} {sec * 1e6:,.0f} us" for name, sec in t.items())
        out.append(f"  crossover B={r['batch']:,} fwd+bwd: {row}; faster {min(t, key=t.get)}, auto takes {r['auto']}")
    for r in data.get("bandwidth", []):
        if r["impl"] == "triton" and r["pass"] == "forward (no grad)":
            kern = r.get("pct_of_hbm_kernel")
            out.append(f"  triton forward at {r['batch']:,} rows: call {r['pct_of_hbm_call']:.0f} % of HBM, kernel "
                       f"{'n/a' if kern is None else f'{kern:.0f} %'} (target >= 70 %)")
    return out or ["fused CORAL op: no latency or bandwidth rows"]


def main() -> None:
    work = Path(sys.argv[1])
    lines = [f"cuda tests: {pytest_counts(work / 'cuda_tests.log')}"]
    lines += triton_audit(work) + coral(work) + throughput(work) + train(work) + gan(work) + lime(work) + onnx(work)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
