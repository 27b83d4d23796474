"""`bookcover-fast serve` vs in-process ONNX Runtime, measured side by side in one run.

Three ways to turn JPEG covers into levels, on the same artifact, ONNX Runtime threads and
decode pool size:
- **in-process**: the consumer's ``Artifact``: decode a batch of covers in a thread pool, one
  ``predict_pixels`` call (the ceiling: no HTTP, no queue);
- **served, batched**: the server with dynamic batching (``--max-batch 32``), one cover per
  multipart request;
- **served, --max-batch 1**: the same server with batching off.

Each at concurrency 1, 8 and 32 (closed loop: each client sends its next request when the last
is answered; in-process runs batches of that size). Reports covers/s, p50 and p99, and the
ratios the targets name. Then a soak: open-loop requests at twice the batched capacity for
``--soak-s`` seconds: every answer must be 200 or 503, and the server's resident memory at the
end within 10 % of its level after the first 10 s.

    python bench/serve_speed.py [--artifact DIR] [--crop 120] [--threads 2] [--seconds 8] [--soak-s 60]

Without --artifact, a seeded random ResNet-34 (batch-norm calibrated, as bench/onnx_speed.py)
is exported into a temp folder: speed does not depend on what the network learned. Covers come
from ../shared/data/goodreads-sample. The client runs on the same cores as the server, as it
would on one machine; absolute numbers on a shared VM drift, the ratios less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "goodreads-sample" / "images"
CONCURRENCY = (1, 8, 32)
MAX_BATCH = 32


def build_artifact(folder: Path, crop: int, resize: int) -> Path:
    """A verified artifact of a seeded, BN-calibrated random CoralResNet34."""
    import torch

    sys.path.insert(0, str(REPO))
    from bench.onnx_speed import calibrate_batchnorm
    from bookcover.classifier.model import CoralResNet34
    from bookcover.export import export_onnx, write_manifest

    torch.manual_seed(0)
    model = CoralResNet34(num_levels=5)
    calibrate_batchnorm(model, crop)
    meta = {"bookcover.levels": 5, "bookcover.input_spec": {"resize": [resize, resize], "crop": crop}}
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, crop, folder / "model.onnx", meta)
    write_manifest(folder)
    return folder


def covers(n: int) -> list[tuple[str, bytes]]:
    paths = sorted(SAMPLE.glob("*.jpg"), key=lambda p: int(p.stem))[:n]
    if not paths:
        sys.exit(f"no covers under {SAMPLE}")
    return [(p.name, p.read_bytes()) for p in paths]


def summary(latencies: list[float], n_covers: int, seconds: float) -> dict:
    lat = sorted(latencies)
    return {"covers_per_s": n_covers / seconds, "p50_ms": 1e3 * statistics.median(lat),
            "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "requests": len(lat)}


# --- in-process ------------------------------------------------------------------------------


def in_process(artifact: Path, blobs: list[tuple[str, bytes]], threads: int, batch: int, seconds: float) -> dict:
    """Decode ``batch`` uploads in the consumer's way (a file per cover, as the server does) and
    run one predict_pixels call, repeatedly for ``seconds``."""
    sys.path.insert(0, str(REPO))
    from bookcover.serve.model import ServedModel

    model = ServedModel.load(artifact, threads=threads)
    model.warm(batch)
    pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1))
    latencies, done, j = [], 0, 0
    t_end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < t_end:
        chunk = [blobs[(j + k) % len(blobs)][1] for k in range(batch)]
        j += batch
        s = time.perf_counter()
        pixels = np.stack(list(pool.map(model.decode, chunk)))
        model.run(pixels)
        latencies.append(time.perf_counter() - s)
        done += batch
    elapsed = time.perf_counter() - t0
    pool.shutdown()
    return summary(latencies, done, elapsed)


# --- served ----------------------------------------------------------------------------------


class Served:
    def __init__(self, artifact: Path, threads: int, *args: str):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "bookcover.cli", "serve", "--artifact", str(artifact), "--port", "0",
               "--threads", str(threads), *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stderr.readline()
        found = re.search(r"on (http://\S+)", line)
        if not found:
            self.proc.kill()
            sys.exit(f"server did not start: {line}{self.proc.stderr.read()}")
        self.url = found.group(1)
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        sys.exit("server not ready in 120 s")

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(60)


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "bookcoverbench"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def closed_loop(url: str, bodies: list[tuple[bytes, str]], concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        t_end = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            j = w
            while time.perf_counter() < t_end:
                body, ctype = bodies[j % len(bodies)]
                j += concurrency
                s = time.perf_counter()
                r = await client.post("/v1/covers:predict", content=body, headers={"content-type": ctype})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - s)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - t0
    out = summary(latencies, len(latencies), elapsed)
    out["statuses"] = statuses
    return out


async def soak(server: Served, bodies: list[tuple[bytes, str]], rate: float, seconds: float) -> dict:
    """Open loop at ``rate`` requests/s; RSS sampled every second."""
    import httpx

    statuses: dict[str, int] = {}
    rss: list[tuple[float, float]] = []
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        async def one(j: int) -> None:
            body, ctype = bodies[j % len(bodies)]
            try:
                r = await client.post("/v1/covers:predict", content=body, headers={"content-type": ctype})
                key = str(r.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            statuses[key] = statuses.get(key, 0) + 1

        tasks, t0, j, next_sample = [], time.perf_counter(), 0, 0.0
        while (now := time.perf_counter() - t0) < seconds:
            while j < now * rate:
                tasks.append(asyncio.create_task(one(j)))
                j += 1
            if now >= next_sample:
                rss.append((now, server.rss_mb()))
                next_sample += 1.0
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
    rss.append((time.perf_counter() - t0, server.rss_mb()))
    early = [m for t, m in rss if t <= 10.0]
    return {"rate": rate, "sent": j, "statuses": statuses, "rss_first_10s_mb": max(early),
            "rss_end_mb": rss[-1][1], "rss_samples": len(rss)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", type=Path, default=None)
    ap.add_argument("--crop", type=int, default=120)
    ap.add_argument("--resize", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    ap.add_argument("--soak-s", type=float, default=60.0, help="soak length (0: skip)")
    ap.add_argument("--covers", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    blobs = covers(args.covers)
    bodies = [multipart(n, b) for n, b in blobs]
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or build_artifact(Path(tmp) / "artifact", args.crop, args.resize)
        rows: dict[str, dict[int, dict]] = {"in-process": {}, "served, batched": {}, "served, --max-batch 1": {}}
        for c in CONCURRENCY:
            rows["in-process"][c] = in_process(artifact, blobs, args.threads, min(c, MAX_BATCH), args.seconds)
        for label, extra in (("served, batched", ["--max-batch", str(MAX_BATCH)]),
                             ("served, --max-batch 1", ["--max-batch", "1"])):
            server = Served(artifact, args.threads, *extra)
            try:
                for c in CONCURRENCY:
                    rows[label][c] = asyncio.run(closed_loop(server.url, bodies, c, args.seconds))
            finally:
                server.stop()
        soaked = None
        if args.soak_s > 0:
            capacity = rows["served, batched"][32]["covers_per_s"]
            server = Served(artifact, args.threads, "--max-batch", str(MAX_BATCH), "--max-queue", "64")
            try:
                soaked = asyncio.run(soak(server, bodies, 2 * capacity, args.soak_s))
            finally:
                soaked["exit_code"] = server.stop()

    print(f"threads {args.threads}, crop {args.crop}, {os.cpu_count()} cores, {len(blobs)} real JPEG covers, "
          f"{args.seconds:g} s per cell; one cover per request\n")
    print("| way | concurrency | covers/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for label, by_c in rows.items():
        for c, r in by_c.items():
            print(f"| {label} | {c} | {r['covers_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    ip, sb = rows["in-process"], rows["served, batched"]
    print(f"\nbatched at c=32 / in-process (batch 32): {sb[32]['covers_per_s'] / ip[32]['covers_per_s']:.2f}x "
          "(target >= 0.8x)")
    print(f"c=1 p50: served {sb[1]['p50_ms']:.1f} ms vs in-process {ip[1]['p50_ms']:.1f} ms: "
          f"+{sb[1]['p50_ms'] - ip[1]['p50_ms']:.1f} ms (target <= +5 ms)")
    other = {label: {c: r.get("statuses") for c, r in by_c.items()} for label, by_c in rows.items() if label != "in-process"}
    print(f"statuses in the closed-loop runs: {other}")
    if soaked:
        growth = soaked["rss_end_mb"] / soaked["rss_first_10s_mb"] - 1
        print(f"soak {args.soak_s:g} s at {soaked['rate']:.1f} req/s (2x batched capacity): {soaked['sent']} sent, "
              f"statuses {soaked['statuses']}; RSS first 10 s {soaked['rss_first_10s_mb']:.0f} MB, end "
              f"{soaked['rss_end_mb']:.0f} MB ({100 * growth:+.1f} %, target within 10 %); exit code "
              f"{soaked['exit_code']}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "soak": soaked, "threads": args.threads, "crop": args.crop},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
