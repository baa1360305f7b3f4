"""First greeting: a web caller joins, how long until the greeting is heard?

The real stack: LiveKit server, one agent worker, the token server with `EARLY_DISPATCH` (the
token request creates the room with the agent dispatched), Postgres, and the provider emulators
with a good cloud stack's latencies (TTS first byte 100 ms; the greeting's fixed opening comes
from the worker's greeting cache). ID tokens are RS256-signed by a local stand-in for Google's
key service. The caller is LiveKit's Python rtc client; "heard" is the first agent audio frame
it receives above speech level. Two ways of joining, ``--calls`` times each:

- ``waiting``: the caller joins once the agent is in the room and its session started (as when
  a browser takes longer to connect than the agent to start);
- ``at_once``: the caller joins as soon as the token is returned (the agent is still starting).

    python -m bench.first_greeting [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from livekit import api

from bench.common import bench_server, environment, percentiles, scratch_database, table, write_result
from tests.support.agent_worker import start_worker
from tests.support.firebase_emulator import SigningAuthority, firebase_claims
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.provider_emulators import start_provider_emulators
from tests.support.rtc_caller import Caller
from tests.support.token_server import start_token_server, token_server_env

LATENCIES = {"stt": {"first_ms": 350}, "llm": {"first_ms": 375}, "tts": {"first_ms": 100}}
AGENT = "voicedesk"


async def _agent_ready(livekit: LiveKitServer, room: str, within: float = 20) -> None:
    """The agent is in ``room`` with its track published and its session started."""
    deadline = time.monotonic() + within
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        while time.monotonic() < deadline:
            try:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            except api.TwirpError:  # the room is not there yet
                resp = None
            agents = (
                [p for p in resp.participants if p.kind == api.ParticipantInfo.Kind.AGENT] if resp else []
            )
            if agents and agents[0].tracks and "lk.agent.state" in agents[0].attributes:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"no agent ready in {room} within {within}s")


async def _call(token_url: str, id_token: str, livekit: LiveKitServer, *, wait: bool) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=token_url, timeout=10) as http:
        pressed = time.monotonic()
        resp = await http.post("/token", headers={"Authorization": f"Bearer {id_token}"})
        resp.raise_for_status()
    body = resp.json()
    room = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(body["participant_token"]).video.room
    if wait:
        await _agent_ready(livekit, room)
    caller = Caller()
    try:
        await caller.connect(body["server_url"], body["participant_token"])
        await caller.wait_for(lambda: caller.loud_frames, 20.0, "the greeting")
        joined, heard = caller.connected_at, caller.loud_frames[0]
        assert joined is not None
        return {"joined_to_heard_ms": (heard - joined) * 1000, "token_to_heard_ms": (heard - pressed) * 1000}
    finally:
        await caller.close()
        await asyncio.sleep(2.0)  # the job ends and a warm process is ready for the next call


async def _run(calls: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-greeting-"))
    authority = SigningAuthority(max_age=3600)
    with bench_server(), scratch_database() as db:
        livekit = start_livekit(work / "livekit")
        emulators = start_provider_emulators(work / "emulators")
        worker = token_server = None
        try:
            for provider, values in LATENCIES.items():
                emulators.set_latency(provider, **values)
            worker = start_worker(
                work / "worker",
                {
                    **livekit.env(),
                    **emulators.env(),
                    "DATABASE_URL": db,
                    "APP_ENV": "test",
                    "AGENT_NAME": AGENT,
                    "WORKER_NUM_IDLE_PROCESSES": "2",
                    "RECORDING_ENABLED": "false",
                    "GREETING_CACHE_DIR": str(work / "greetings"),
                    "GREETING_CACHE_PREWARM_SECONDS": "8",
                    "CALL_JOURNAL_DIR": str(work / "journal"),
                },
                name="bench-worker",
                timeout=180,
            )
            token_server = start_token_server(
                work / "token-server",
                {
                    **token_server_env(db),
                    **livekit.env(),
                    "FIREBASE_ID_TOKEN_CERTS_URL": authority.certs_url,
                    "EARLY_DISPATCH": "true",
                },
            )
            samples: dict[str, list[dict[str, float]]] = {"waiting": [], "at_once": []}
            await _call(token_server.url, authority.sign(firebase_claims("bench-warmup")), livekit, wait=True)
            for i in range(calls):
                for way in samples:
                    id_token = authority.sign(firebase_claims(f"bench-greeting-{way}-{i}"))
                    samples[way].append(
                        await _call(token_server.url, id_token, livekit, wait=way == "waiting")
                    )
        finally:
            for service in (token_server.service if token_server else None, worker):
                if service is not None:
                    service.stop()
            emulators.stop()
            livekit.service.stop()
            authority.close()
    return {
        "benchmark": "first_greeting",
        "environment": environment(),
        "settings": {"calls": calls, "latencies": LATENCIES, "early_dispatch": True, "greeting_cache": True},
        "results": {
            way: {
                "joined_to_heard_ms": percentiles([s["joined_to_heard_ms"] for s in runs]),
                "token_to_heard_ms": percentiles([s["token_to_heard_ms"] for s in runs]),
                "samples": runs,
            }
            for way, runs in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(_run(args.calls))
    path = write_result("first_greeting", result)
    rows = [
        [
            way,
            r["joined_to_heard_ms"]["p50"],
            r["joined_to_heard_ms"]["p95"],
            r["token_to_heard_ms"]["p50"],
            r["token_to_heard_ms"]["p95"],
        ]
        for way, r in result["results"].items()
    ]
    print(table(["caller joins", "joined->heard p50", "p95", "token->heard p50", "p95"], rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
