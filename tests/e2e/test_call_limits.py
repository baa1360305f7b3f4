"""Silence and the length limit end a call politely; tested on web calls, as they apply to every channel.

Each test runs a worker of its own (agent `voicedesk-sales`) with short limits, so the session's
worker keeps its production-like defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import prompts
from tests.support.agent_worker import start_worker
from tests.support.processes import Service
from tests.support.web_call import join_call, stored_call, stored_events

AGENT = "voicedesk-sales"


@pytest.fixture
def limited_worker(request, tmp_path: Path, worker_env: dict[str, str]) -> Iterator[Service]:
    env = {
        **worker_env,
        "AGENT_NAME": AGENT,
        "CALL_JOURNAL_DIR": str(tmp_path / "journal"),
        "RECORDING_ENABLED": "false",
        **request.param,
    }
    worker = start_worker(tmp_path, env, name="limited-worker")
    yield worker
    worker.stop()


def _ended_by_agent(caller) -> bool:
    return caller.room.connection_state != 1 or not caller.room.remote_participants  # 1: connected


@pytest.mark.parametrize(
    "limited_worker", [{"SILENCE_REPROMPT_SECONDS": "3", "SILENCE_MAX_REPROMPTS": "1"}], indirect=True
)
async def test_silent_caller_is_reprompted_then_the_call_ends(
    limited_worker, firebase_emulator, live_token_server, provider_emulators, livekit_server, database_url
) -> None:
    provider_emulators.reset()
    user = firebase_emulator.sign_up(display_name="Quinn Quiet")
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret, agent=AGENT
    )
    try:
        await caller.wait_for(lambda: caller.agent_finals(), 20.0, "the greeting")
        reprompt, goodbye = prompts.line("reprompt"), prompts.line("silence_goodbye")
        await caller.wait_for(lambda: reprompt in caller.agent_finals(), 15.0, "the re-prompt")
        await caller.wait_for(lambda: goodbye in caller.agent_finals(), 15.0, "the goodbye")
        await caller.wait_for(lambda: _ended_by_agent(caller), 15.0, "the agent to end the call")
    finally:
        await caller.close()
    assert caller.agent_finals().count(reprompt) == 1, "SILENCE_MAX_REPROMPTS=1"
    row = await stored_call(database_url, room)
    assert row["end_reason"] == "silence" and row["status"] == "completed"
    kinds = [e["kind"] for e in await stored_events(database_url, row["id"])]
    assert kinds.count("reprompt") == 1 and "hang_up" in kinds


@pytest.mark.parametrize(
    "limited_worker",
    [{"MAX_CALL_SECONDS": "14", "CALL_END_WARNING_SECONDS": "6", "SILENCE_REPROMPT_SECONDS": "60"}],
    indirect=True,
)
async def test_call_at_the_length_limit_is_warned_then_ended(
    limited_worker, firebase_emulator, live_token_server, provider_emulators, livekit_server, database_url
) -> None:
    provider_emulators.reset()
    user = firebase_emulator.sign_up(display_name="Lee Long")
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret, agent=AGENT
    )
    try:
        warning, goodbye = prompts.line("duration_warning"), prompts.line("duration_goodbye")
        await caller.wait_for(lambda: warning in caller.agent_finals(), 20.0, "the warning")
        await caller.wait_for(lambda: goodbye in caller.agent_finals(), 15.0, "the goodbye")
        await caller.wait_for(lambda: _ended_by_agent(caller), 15.0, "the agent to end the call")
    finally:
        await caller.close()
    row = await stored_call(database_url, room)
    assert row["end_reason"] == "max_duration"
    assert 14 <= row["duration_seconds"] < 30
    kinds = [e["kind"] for e in await stored_events(database_url, row["id"])]
    assert "duration_warning" in kinds and "hang_up" in kinds
