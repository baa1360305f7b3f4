"""Run the real agent worker (`python -m agent start`) against a test LiveKit server."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.processes import Service, start_service


def start_worker(
    log_dir: Path,
    env: dict[str, str],
    name: str = "agent-worker",
    timeout: float = 90,
    log_level: str = "info",
) -> Service:
    """Start a worker and wait until LiveKit has registered it (so dispatches reach it)."""

    def registered() -> bool:
        log = log_dir / f"{name}.log"
        return log.exists() and "registered worker" in log.read_text(errors="replace")

    svc = start_service(
        name,
        [sys.executable, "-m", "agent", "start", "--log-level", log_level],
        log_dir,
        env={"WORKER_NUM_IDLE_PROCESSES": "1", "WORKER_HTTP_PORT": "0", "WORKER_MAX_CALLS": "4", **env},
        ready=registered,
        timeout=timeout,
    )
    return svc
