"""Start real components as subprocesses for tests, wait until they answer, and stop them.

Every component a test needs (LiveKit server, token server, workers, emulators) is a real
process; its output goes to a log file under the test's tmp dir so a failure shows why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return 200 <= resp.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except OSError:
            return False

    return check


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


def start_service(
    name: str,
    argv: list[str],
    log_dir: Path,
    *,
    ready: Callable[[], bool] | None = None,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    timeout: float = 60,
) -> Service:
    """Start ``argv`` in its own process group and wait until ``ready()`` is true."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    svc = Service(name, proc, log_path, env or {})
    deadline = time.monotonic() + timeout
    while ready is not None and not ready():
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {proc.returncode} before it was ready:\n{svc.log()[-4000:]}"
            )
        if time.monotonic() > deadline:
            svc.stop()
            raise RuntimeError(f"{name} not ready after {timeout}s:\n{svc.log()[-4000:]}")
        time.sleep(0.1)
    return svc
