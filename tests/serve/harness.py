"""A real `bookcover-fast serve` subprocess on 127.0.0.1 (port 0: the server picks a free one and
says which on its first line), waited for with bounded loops and always stopped."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"on (http://127\.0\.0\.1:\d+)")


class Server:
    """The process, its base URL and everything it wrote to stderr (collected by a thread)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.url, self.lines = proc, None, []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_url(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := URL_LINE.search(line):
                    self.url = m.group(1)
                    return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"server did not start in {timeout} s:\n{self.log}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/v2/health/ready").status_code == 200:
                        return
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log}")
                time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"server did not stop within {timeout} s of signal {sig}:\n{self.log}") from None
        finally:
            self._reader.join(5)


def command(artifact: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bookcover.cli", "serve", "--artifact", str(artifact), "--port", "0",
            "--threads", "1", *args]


def start(artifact: Path, *args: str) -> Server:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(command(artifact, *args), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return Server(proc)


@contextlib.contextmanager
def running(artifact: Path, *args: str, ready: bool = True) -> Iterator[Server]:
    server = start(artifact, *args)
    try:
        server.wait_url()
        if ready:
            server.wait_ready()
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()
