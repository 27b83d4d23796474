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


def summary(parts: list[dict]) -> dict:
    """Merge the rounds of one cell: covers/s over their total time, latency percentiles."""
    lat = sorted(x for p in parts for x in p["latencies"])
    statuses: dict = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {"covers_per_s": sum(p["covers"] for p in parts) / sum(p["seconds"] for p in parts),
            "p50_ms": 1e3 * statistics.median(lat), "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "requests": len(lat), "statuses": statuses}


# --- in-process ------------------------------------------------------------------------------


class InProcess:
    """The consumer's Artifact in this process, decoding as the server does (a file per cover,
    in a pool of the server's size): the ceiling, with no HTTP and no queue."""

    def __init__(self, artifact: Path, threads: int):
        sys.path.insert(0, str(REPO))
        from bookcover.serve.model import ServedModel

        self.model = ServedModel.load(artifact, threads=threads)
        self.model.warm(MAX_BATCH)
        self.pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1))

    def run(self, blobs: list[tuple[str, bytes]], batch: int, seconds: float) -> dict:
        """Batches of ``batch`` covers, one after the other, for ``seconds``."""
        latencies, done, j = [], 0, 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            chunk = [blobs[(j + k) % len(blobs)][1] for k in range(batch)]
            j += batch
            s = time.perf_counter()
            self.model.run(np.stack(list(self.pool.map(self.model.decode, chunk))))
            latencies.append(time.perf_counter() - s)
            done += batch
        return {"latencies": latencies, "covers": done, "seconds": time.perf_counter() - t0, "statuses": {}}


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


def request_bytes(host: str, name: str, data: bytes) -> bytes:
    """One complete HTTP/1.1 multipart request for one cover, built once and replayed."""
    boundary = "bookcoverbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /v1/covers:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator shares the cores with the server,
    so it should cost as little CPU as possible (httpx costs about a millisecond a request)."""

    def __init__(self, url: str):
        self.host, self.port = url.removeprefix("http://").rsplit(":", 1)
        self.reader = self.writer = None
        self.answered = 0  # responses read on the current socket (> 0: a reused keep-alive socket)

    async def send(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, int(self.port))
            self.answered = 0
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.answered += 1
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await self.reader.readexactly(length)
        if re.search(rb"(?i)connection: *close", head):
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def closed_loop(url: str, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    t_end = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        conn, j = Connection(url), w
        try:
            while time.perf_counter() < t_end:
                raw = requests[j % len(requests)]
                j += concurrency
                s = time.perf_counter()
                status = await conn.send(raw)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - s)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return {"latencies": latencies, "covers": len(latencies), "seconds": time.perf_counter() - t0,
            "statuses": statuses}


async def soak(server: Served, requests: list[bytes], rate: float, seconds: float, max_open: int = 512) -> dict:
    """Open loop at ``rate`` requests/s, each on a connection from a pool of idle ones (a new
    one when none is idle, up to ``max_open``); RSS sampled every second."""
    statuses: dict[str, int] = {}
    rss: list[tuple[float, float]] = []
    idle: list[Connection] = []
    opened = [0]
    unsent = [0]
    stale_retried = [0]

    async def one(j: int) -> None:
        if idle:
            conn = idle.pop()
        elif opened[0] < max_open:
            opened[0] += 1
            conn = Connection(server.url)
        else:
            unsent[0] += 1  # the client's own limit, not the server's answer
            return
        raw = requests[j % len(requests)]
        try:
            try:
                key = str(await conn.send(raw))
            except (OSError, asyncio.IncompleteReadError) as exc:
                # A pooled keep-alive socket the server closed while it sat idle (uvicorn closes idle
                # ones after 5 s) fails before any byte of an answer: retry once on a new socket, as
                # HTTP client pools do for stale connections; counted apart, so it stays visible.
                stale = conn.answered > 0 and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial)
                if not stale:
                    raise
                stale_retried[0] += 1
                conn.close()
                key = str(await conn.send(raw))
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError) as exc:
            key = type(exc).__name__
            conn.close()
            opened[0] -= 1
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
    for conn in idle:
        conn.close()
    rss.append((time.perf_counter() - t0, server.rss_mb()))
    early = [m for t, m in rss if t <= 10.0]
    return {"rate": rate, "sent": j - unsent[0], "not_sent_client_limit": unsent[0], "statuses": statuses,
            "stale_keepalive_retried": stale_retried[0],
            "rss_first_10s_mb": max(early), "rss_end_mb": rss[-1][1], "rss_samples": len(rss)}


def _crop(artifact: Path) -> int:
    sys.path.insert(0, str(REPO))
    from bookcover.serve.model import ServedModel

    return ServedModel.load(artifact, threads=1).crop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", type=Path, default=None)
    ap.add_argument("--crop", type=int, default=120)
    ap.add_argument("--resize", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    ap.add_argument("--soak-s", type=float, default=60.0, help="soak length (0: skip)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds per cell")
    ap.add_argument("--covers", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    blobs = covers(args.covers)
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or build_artifact(Path(tmp) / "artifact", args.crop, args.resize)
        ways = {"in-process": InProcess(artifact, args.threads)}
        servers = {"served, batched": Served(artifact, args.threads, "--max-batch", str(MAX_BATCH)),
                   "served, --max-batch 1": Served(artifact, args.threads, "--max-batch", "1")}
        parts: dict[tuple[str, int], list[dict]] = {}
        try:
            raw = {label: [request_bytes(srv.url, n, b) for n, b in blobs] for label, srv in servers.items()}
            # Rounds alternate the three ways, so load from other processes hits all alike.
            for c in CONCURRENCY:
                for _ in range(args.rounds):
                    chunk = args.seconds / args.rounds
                    parts.setdefault(("in-process", c), []).append(
                        ways["in-process"].run(blobs, min(c, MAX_BATCH), chunk))
                    for label, srv in servers.items():
                        parts.setdefault((label, c), []).append(
                            asyncio.run(closed_loop(srv.url, raw[label], c, chunk)))
        finally:
            for srv in servers.values():
                srv.stop()
        rows: dict[str, dict[int, dict]] = {}
        for (label, c), got in parts.items():
            rows.setdefault(label, {})[c] = summary(got)
        crop = _crop(artifact)
        soaked = None
        if args.soak_s > 0:
            capacity = rows["served, batched"][32]["covers_per_s"]
            server = Served(artifact, args.threads, "--max-batch", str(MAX_BATCH), "--max-queue", "64")
            try:
                soaked = asyncio.run(soak(server, [request_bytes(server.url, n, b) for n, b in blobs], 2 * capacity,
                                          args.soak_s))
            finally:
                soaked["exit_code"] = server.stop()

    print(f"threads {args.threads}, crop {crop}, {os.cpu_count()} cores, {len(blobs)} real JPEG covers, "
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
    other = {label: {c: r["statuses"] for c, r in by_c.items()} for label, by_c in rows.items() if label != "in-process"}
    print(f"statuses in the closed-loop runs: {other}")
    if soaked:
        growth = soaked["rss_end_mb"] / soaked["rss_first_10s_mb"] - 1
        print(f"soak {args.soak_s:g} s at {soaked['rate']:.1f} req/s (2x batched capacity): {soaked['sent']} sent, "
              f"statuses {soaked['statuses']} ({soaked['stale_keepalive_retried']} stale keep-alive sockets retried on a new "
              f"one); RSS first 10 s {soaked['rss_first_10s_mb']:.0f} MB, end "
              f"{soaked['rss_end_mb']:.0f} MB ({100 * growth:+.1f} %, target within 10 %); exit code "
              f"{soaked['exit_code']}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "soak": soaked, "threads": args.threads, "crop": crop},
                                        indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
