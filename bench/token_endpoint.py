"""`POST /token` under load: requests per second and latency, with Firebase verification.

The real token server (`python -m token_server`, uvicorn) with one and two worker processes,
against the benchmark's embedded Postgres (each request upserts the caller's profile) and a real
LiveKit server (with `EARLY_DISPATCH` on, each request also creates the call's room with the
agent dispatched through LiveKit's API; no agent worker runs, so no job is taken). ID tokens are
RS256-signed by a local stand-in for Google's key service whose certificates may be cached for an
hour, as Google's may: firebase-admin checks every signature against cached certificates, as in
production. The load comes from this process on the same machine: ``--concurrency`` keep-alive
HTTP/1.1 connections, each sending requests back to back, ``--requests`` in all after a warm-up.
On a 2-core machine the load generator takes CPU from the server, so the figures are a floor.

    python -m bench.token_endpoint [--requests 2000] [--concurrency 16] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import (
    bench_server,
    environment,
    percentiles,
    scratch_database,
    server_info,
    table,
    write_result,
)
from tests.support.firebase_emulator import SigningAuthority, firebase_claims
from tests.support.livekit_server import start_livekit
from tests.support.token_server import start_token_server, token_server_env

USERS = 200  # distinct signed-in users, each with a profile row after the warm-up
WARMUP = 200


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn's workers)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def _load(url: str, tokens: list[str], requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` POST /token over ``concurrency`` connections; latency of each in ms."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    sent = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def connection() -> None:
            while (n := next(sent)) < requests:
                headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
                start = time.perf_counter()
                try:
                    resp = await http.post("/token", headers=headers)
                    outcome = str(resp.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if outcome == "201":
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    failures[outcome] = failures.get(outcome, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"latencies_ms": latencies, "failures": failures, "elapsed_s": elapsed}


def _run(
    work: Path, env: dict[str, str], tokens: list[str], *, workers: int, early: bool, args: argparse.Namespace
) -> dict[str, Any]:
    name = f"token-server-w{workers}-{'early' if early else 'plain'}"
    server = start_token_server(
        work / name,
        {**env, "TOKEN_SERVER_WORKERS": str(workers), "EARLY_DISPATCH": str(early).lower()},
        name=name,
    )
    try:
        asyncio.run(_load(server.url, tokens, WARMUP, args.concurrency))  # profiles exist, caches filled
        cpu_before = _cpu_seconds(server.service.proc.pid)
        run = asyncio.run(_load(server.url, tokens, args.requests, args.concurrency))
        cpu = _cpu_seconds(server.service.proc.pid) - cpu_before
    finally:
        server.service.stop()
    ok = len(run["latencies_ms"])
    return {
        "workers": workers,
        "early_dispatch": early,
        "requests": args.requests,
        "ok": ok,
        "failures": run["failures"],
        "elapsed_s": round(run["elapsed_s"], 3),
        "requests_per_second": round(ok / run["elapsed_s"], 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(ok, 1), 3),
        "latency_ms": percentiles(run["latencies_ms"]),
        "samples_ms": [round(x, 3) for x in run["latencies_ms"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    authority = SigningAuthority(max_age=3600)
    tokens = [authority.sign(firebase_claims(f"bench-user-{i:04d}")) for i in range(USERS)]
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="voicedesk-bench-token-") as tmp,
        bench_server(),
        scratch_database() as db,
    ):
        work = Path(tmp)
        livekit = start_livekit(work / "livekit")
        env = {
            **token_server_env(db),
            **livekit.env(),
            "FIREBASE_ID_TOKEN_CERTS_URL": authority.certs_url,
        }
        try:
            for early in (False, True):
                for workers in args.workers:
                    runs.append(_run(work, env, tokens, workers=workers, early=early, args=args))
                    print(f"done: {workers} worker(s), early dispatch {early}", flush=True)
        finally:
            livekit.service.stop()
            authority.close()
        database = server_info(db)

    path = write_result(
        "token_endpoint",
        {
            "benchmark": "token_endpoint",
            "environment": environment(),
            "database": database,
            "settings": {
                "requests": args.requests,
                "warmup": WARMUP,
                "concurrency": args.concurrency,
                "users": USERS,
                "certificates": "RS256, Cache-Control max-age=3600 (cached by firebase-admin)",
                "load_generator": "httpx.AsyncClient in the benchmark process, same machine",
            },
            "runs": runs,
        },
    )
    rows = [
        [
            r["workers"],
            "on" if r["early_dispatch"] else "off",
            r["requests_per_second"],
            r["latency_ms"]["p50"],
            r["latency_ms"]["p95"],
            r["latency_ms"]["p99"],
            r["server_cpu_ms_per_request"],
            sum(r["failures"].values()),
        ]
        for r in runs
    ]
    headers = ["workers", "early dispatch", "req/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req", "failed"]
    print(table(headers, rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
