"""Catalogue scoring, side by side in one run: the local engine (thread and process decode pools),
the Ray engine with 1 and 2 actors, export/predict.py --images, and the parts alone (decoding
only; the model only, on pre-decoded batches).

    python bench/score_speed.py [--covers 2000] [--artifact DIR] [--out-md FILE]

Covers are real Goodreads covers (../shared/data/goodreads-sample), linked (never copied) into a
temporary folder, repeated under new names when more are asked than the sample holds. Without
--artifact, a seeded, BN-calibrated but untrained CoralResNet-34 at the study's 128 px / crop 120
is exported: its speed is a trained model's speed (same graph), its predictions mean nothing.

Targets (DESIGN.md): local >= 0.9 x 1 / (decode + model time per cover); Ray on one node >= 0.7x
local; Ray 2 actors vs 1: the scaling. Benchmarks measure, tests assert: nothing here fails on a
ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "goodreads-sample"
sys.path.insert(0, str(REPO))


def make_resnet_artifact(folder: Path, image_size: int = 128, crop: int = 120) -> Path:
    """An artifact of a seeded, BN-calibrated, untrained CoralResNet-34 (speed only)."""
    import torch

    from bench.onnx_speed import calibrate_batchnorm
    from bookcover.classifier.model import CoralResNet34
    from bookcover.export import export_onnx, write_manifest

    torch.manual_seed(0)
    model = CoralResNet34(num_levels=5)
    calibrate_batchnorm(model, crop)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"resize": [image_size, image_size], "crop": crop, "dtype": "uint8", "layout": "NHWC RGB"}
    export_onnx(model, crop, folder / "model.onnx", {"bookcover.input_spec": spec, "bookcover.levels": 5,
                                                     "bookcover.bench": "untrained CoralResNet-34, speed only"})
    write_manifest(folder)
    return folder


def link_covers(folder: Path, n: int) -> list[str]:
    sources = sorted((SAMPLE / "images").glob("*.jpg"), key=lambda p: int(p.stem))
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        link = folder / f"{i}.jpg"
        link.symlink_to(sources[i % len(sources)])
        paths.append(str(link))
    return paths


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--covers", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--artifact", type=Path, default=None, help="reuse an artifact folder (default: export one)")
    parser.add_argument("--out-md", type=Path, default=None, help="also write the table here")
    parser.add_argument("--skip", default="", help="comma-separated rows to leave out (processes,ray,predict)")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bookcover-score-bench-"))
    try:
        artifact = args.artifact or make_resnet_artifact(work / "artifact")
        paths = link_covers(work / "covers", args.covers)
        rows = run(artifact, paths, work, args.batch_size, cores, skip)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, args.covers, cores, args.batch_size)
    print(text)
    if args.out_md:
        args.out_md.write_text(text + "\n")


def run(artifact: Path, paths: list[str], work: Path, batch: int, cores: int, skip: set[str]) -> dict[str, dict]:
    from bookcover.score import ScoreOptions, score_catalogue
    from bookcover.score.artifact import artifact_ref
    from bookcover.score.local import make_pool
    from bookcover.score.rows import decode_batch

    n = len(paths)
    ref = artifact_ref(artifact)
    art = ref.open(threads=cores)
    spec = art.input_spec
    resize, crop = [int(v) for v in spec["resize"]], int(spec["crop"])
    batches = [paths[a : a + batch] for a in range(0, n, batch)]
    rows: dict[str, dict] = {}

    # The parts alone. Decoding with the local engine's own pool (threads, one per core).
    pool = make_pool("threads", cores)
    decode_batch(batches[0][:4], resize, crop)  # warm the imports
    seconds, decoded = timed(lambda: list(pool.map(lambda b: decode_batch(b, resize, crop), batches)))
    pool.shutdown()
    rows["decode only"] = {"seconds": seconds, "note": f"{cores} threads"}
    pixels = [d[0] for d in decoded]
    art.predict_pixels(pixels[0][:8])  # warm-up
    seconds, _ = timed(lambda: [art.predict_pixels(p, batch_size=batch) for p in pixels])
    rows["model only"] = {"seconds": seconds, "note": f"onnxruntime, {cores} intra-op threads, batch {batch}"}

    def engine(name: str, **kw) -> None:
        out = work / name.replace(" ", "_")
        summary = score_catalogue(artifact, out, images=work / "covers",
                                  options=ScoreOptions(batch_size=batch, quiet=True, **kw))
        assert summary["covers"] == n, summary
        rows[name] = {"seconds": summary["this_run"]["seconds"], "note": str(summary["workers"])}
        shutil.rmtree(out)

    engine("local, thread pool", decode_pool="threads")
    if "processes" not in skip:
        engine("local, process pool", decode_pool="processes")
    if "ray" not in skip:
        import ray

        t_init, _ = timed(lambda: ray.init(num_cpus=cores, include_dashboard=False, logging_level="warning",
                                           log_to_driver=False))
        try:
            engine("ray, 1 actor", engine="ray", workers=1)
            engine("ray, 2 actors", engine="ray", workers=2)
        finally:
            ray.shutdown()
        rows["ray.init (not in the rows above)"] = {"seconds": t_init, "note": "local instance start", "no_rate": True}
    if "predict" not in skip:
        cmd = [sys.executable, str(REPO / "export" / "predict.py"), str(artifact), "--images", str(work / "covers"),
               "--quiet", "--cpu", "--batch-size", str(batch)]
        seconds, res = timed(lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600))
        assert res.returncode == 0, res.stderr[-500:]
        rows["export/predict.py --images"] = {"seconds": seconds, "note": "one process, 4 decode threads; "
                                              "includes its start (imports, session)"}
    return rows


def report(rows: dict[str, dict], n: int, cores: int, batch: int) -> str:
    per = {k: v["seconds"] / n for k, v in rows.items()}
    bound = 1.0 / (per["decode only"] + per["model only"])  # covers/s if decode and model ran in turn
    local = n / rows["local, thread pool"]["seconds"]
    lines = [f"{n:,} covers, batch {batch}, {cores} cores", "",
             "| run | seconds | covers/s | ms per cover | note |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if r.get("no_rate"):
            lines.append(f"| {name} | {r['seconds']:.1f} | | | {r['note']} |")
            continue
        lines.append(f"| {name} | {r['seconds']:.1f} | {n / r['seconds']:.1f} | {1000 * r['seconds'] / n:.2f} | "
                     f"{r['note']} |")
    lines += ["", f"- 1 / (decode + model time per cover) = {bound:.1f} covers/s; local engine (threads) / that = "
              f"**{local / bound:.2f}** (target >= 0.9)"]
    if "local, process pool" in rows:
        speedup = rows["local, thread pool"]["seconds"] / rows["local, process pool"]["seconds"]
        lines.append(f"- process pool vs thread pool: **{speedup:.2f}x** (above 1: processes are faster)")
    if "ray, 1 actor" in rows:
        r1, r2 = n / rows["ray, 1 actor"]["seconds"], n / rows["ray, 2 actors"]["seconds"]
        lines.append(f"- Ray 1 actor / local = **{r1 / local:.2f}**, Ray 2 actors / local = **{r2 / local:.2f}** "
                     f"(target >= 0.7); 2 actors / 1 actor = **{r2 / r1:.2f}x**")
    lines.append(f"- per core: decoding {1 / (per['decode only'] * cores):.0f} covers/s, the model "
                 f"{1 / (per['model only'] * cores):.1f} covers/s")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
