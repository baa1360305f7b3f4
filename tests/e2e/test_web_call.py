"""A signed-in web user's call, end to end, with every component real.

Auth emulator sign-up -> POST /token -> LiveKit room -> dispatched agent worker (Deepgram,
OpenAI and ElevenLabs plugins talking to the provider emulators) -> Postgres.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.audio import read_pcm, synthesize
from tests.support.web_call import join_call, stored_call, stored_events, stored_turns, summarized

QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to five, Monday to Friday."
SUMMARY = "Caller asked for the opening hours and was told nine to five, Monday to Friday."
# Per-turn latency stages stored in each mode (the realtime model transcribes and speaks itself).
ANSWER_STAGES = {
    "pipeline": ("e2e_ms", "llm_ttft_ms", "tts_ttfb_ms"),
    "realtime": ("e2e_ms",),
    "realtime_voice": ("e2e_ms",),
}
USER_STAGES = {"pipeline": ("stt_ms", "end_of_utterance_ms"), "realtime": (), "realtime_voice": ()}


@pytest.fixture(scope="module")
def question_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(QUESTION, tmp_path_factory.mktemp("audio") / "question.wav")


async def test_web_call_end_to_end(
    firebase_emulator,
    live_token_server,
    provider_emulators,
    agent_mode,
    call_agent,
    livekit_server,
    database_url,
    question_audio,
) -> None:
    provider_emulators.reset()
    provider_emulators.script(
        stt=[QUESTION],
        llm=[
            {"text": ANSWER, "when": QUESTION},
            {
                "text": json.dumps({"summary": SUMMARY, "outcome": "resolved"}),
                "when": "Transcript of the call",
            },
        ],
    )
    user = firebase_emulator.sign_up(display_name="Riley Tester")

    caller, room_name = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret, agent=call_agent
    )
    assert caller.server_url == livekit_server.url
    try:
        # The agent is dispatched by the token's room_config and joins within 3 s.
        await caller.wait_for(lambda: caller.agent_joined_at is not None, 3.0, "the agent to join")

        # The greeting is heard (real, non-silent audio) and its transcript arrives, with the name.
        await caller.wait_for(lambda: caller.agent_finals(), 20.0, "the greeting transcript")
        greeting = caller.agent_finals()[0]
        assert "Riley" in greeting and "help" in greeting.lower()
        await caller.wait_for(lambda: caller.heard_since(0) >= 10, 10.0, "greeting audio")
        await caller.wait_for(lambda: caller.agent_state() == "listening", 20.0, "the greeting to end")

        # Ask the question; the reply is heard and its transcript is the scripted LLM answer.
        asked_at = time.monotonic()
        caller.say(read_pcm(question_audio))
        await caller.wait_for(lambda: ANSWER in caller.agent_finals(), 30.0, "the answer transcript")
        await caller.wait_for(lambda: caller.heard_since(asked_at + 0.5) >= 10, 10.0, "answer audio")
        await caller.wait_for(lambda: caller.agent_state() == "listening", 20.0, "the answer to end")
    finally:
        await caller.close()

    # What the model was asked contains the question as the caller's speech was transcribed.
    model = "llm" if agent_mode == "pipeline" else "realtime"
    assert any(QUESTION in str(r.get("last_user")) for r in provider_emulators.log(model))

    # After the caller leaves, the call row is completed and both turns are stored in order.
    row = await stored_call(database_url, room_name, ready=summarized)
    assert row["status"] == "completed"
    assert row["channel"] == "web" and row["direction"] == "inbound"
    assert row["end_reason"] == "caller_hung_up"
    assert row["duration_seconds"] and row["duration_seconds"] > 1
    assert row["started_by"] == user.uid
    turns = await stored_turns(database_url, row["id"])
    spoken = [(t["role"], t["content"]) for t in turns if t["role"] != "tool"]
    assert spoken[0] == ("assistant", greeting)
    assert ("user", QUESTION) in spoken and ("assistant", ANSWER) in spoken
    assert spoken.index(("user", QUESTION)) < spoken.index(("assistant", ANSWER))
    sequences = [t["sequence"] for t in turns]  # turns and events share one ordered timeline
    assert sequences == sorted(set(sequences))
    answer_turn = next(t for t in turns if t["content"] == ANSWER)
    assert answer_turn["started_at"] is not None and answer_turn["interrupted"] is False
    user_turn = next(t for t in turns if t["role"] == "user")
    for stage in ANSWER_STAGES[agent_mode]:
        assert answer_turn["latency"].get(stage, 0) > 0, (stage, answer_turn["latency"])
    for stage in USER_STAGES[agent_mode]:
        assert user_turn["latency"].get(stage, 0) > 0, (stage, user_turn["latency"])

    # A summary with an outcome, and a recording of both sides as long as the call.
    assert row["summary"] == SUMMARY and row["outcome"] == "resolved"
    assert row["recording_path"] and row["recording_path"].endswith(".ogg")
    assert abs(row["recording_duration_seconds"] - row["duration_seconds"]) < 3.0, row
    events = [e["kind"] for e in await stored_events(database_url, row["id"])]
    assert "joined" in events and "left" in events
