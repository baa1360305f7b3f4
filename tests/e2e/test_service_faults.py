"""Our own services fail during a call: the token server restarts while a web call is going on.

A call needs the token server only to start: the caller then talks to LiveKit and the worker
directly. So the real token server process is stopped in the middle of a call (SIGTERM, as a
deploy or a crash-restart would), the caller goes on talking and hears the answer, the server
comes back on the same port, a new call starts through it, and the first call's record is
complete. (The database going away mid-call: ``test_call_record_durability.py``.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.support.audio import SAMPLE_RATE, read_pcm, synthesize
from tests.support.processes import http_ok, start_service
from tests.support.token_server import TokenServer, start_token_server
from tests.support.web_call import join_call, stored_call, stored_turns

QUESTION = "Can I change my billing date?"
ANSWER = "Yes, under Billing you can pick any day of the month."


@pytest.fixture(scope="module")
def question_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(QUESTION, tmp_path_factory.mktemp("service-fault-audio") / "question.wav")


def _restart(server: TokenServer, work_dir: Path) -> TokenServer:
    """The same server again: same port, same configuration, a new process."""
    service = start_service(
        "token-server-restarted",
        [sys.executable, "-m", "token_server"],
        work_dir,
        env=server.env,
        cwd=work_dir,
        ready=http_ok(f"{server.url}/healthz"),
        timeout=60,
    )
    return TokenServer(service, server.port, server.env)


async def test_token_server_restart_mid_call_the_call_goes_on(
    firebase_emulator,
    live_token_server_env,
    provider_emulators,
    agent_worker,
    livekit_server,
    database_url,
    question_audio,
    tmp_path,
) -> None:
    provider_emulators.reset()
    provider_emulators.script(stt_default=QUESTION, llm=[{"text": ANSWER, "when": "billing date"}] * 3)
    server = start_token_server(tmp_path, live_token_server_env, name="token-server")
    restarted: TokenServer | None = None
    first = second = None
    try:
        user = firebase_emulator.sign_up(display_name="Rhea Restart")
        first, room = await join_call(server.url, user, livekit_server.api_key, livekit_server.api_secret)
        await first.wait_for(lambda: first.agent_finals(), 60.0, "the greeting")
        await first.wait_for(lambda: first.agent_state() == "listening", 30.0, "the greeting to end")

        server.service.stop()  # SIGTERM, mid-call, as a deploy or a restart would
        assert not server.service.alive()
        pcm = read_pcm(question_audio)
        first.say(pcm)
        spoken_until = time.monotonic() + len(pcm) / SAMPLE_RATE
        await first.wait_for(
            lambda: ANSWER in first.agent_finals(), 60.0, "the answer while the server is down"
        )
        await first.wait_for(lambda: first.heard_since(spoken_until) >= 10, 15.0, "the answer's audio")
        gap = next(t for t in first.loud_frames if t >= spoken_until) - spoken_until
        print(f"\ntoken server down: end of caller's speech -> first agent audio {gap * 1000:.0f} ms")

        restarted = _restart(server, tmp_path)
        other = firebase_emulator.sign_up(display_name="Nina Next")
        second, _ = await join_call(restarted.url, other, livekit_server.api_key, livekit_server.api_secret)
        await second.wait_for(
            lambda: any("Nina" in t for t in second.agent_finals()), 60.0, "the new call's greeting"
        )
        assert first.room.isconnected() and first.agent_state() is not None  # the first call is still up
    finally:
        for caller in (first, second):
            if caller is not None:
                await caller.close()
        for s in (server, restarted):
            if s is not None:
                s.service.stop()

    row = await stored_call(database_url, room)
    assert row["status"] == "completed" and row["end_reason"] == "caller_hung_up" and not row["degraded"]
    spoken = [
        (t["role"], t["content"]) for t in await stored_turns(database_url, row["id"]) if t["role"] != "tool"
    ]
    assert spoken[0][0] == "assistant" and "Rhea" in spoken[0][1]
    assert spoken.index(("user", QUESTION)) < spoken.index(("assistant", ANSWER))
