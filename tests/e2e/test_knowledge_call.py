"""Calls that use the knowledge base and remember the caller, end to end over LiveKit.

The scripted LLM decides to call `search_knowledge_base`; what it then says comes from the tool
result the real retrieval returned (the emulator's `answer_from_tool`), so the spoken answer
holds a document's fact only if retrieval found the right document.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.audio import read_pcm, synthesize
from tests.support.kb_cli import ingest
from tests.support.rtc_caller import Caller
from tests.support.web_call import join_call, stored_call, stored_turns, summarized

KB_DIR = Path(__file__).parent / "kb"
PRICE_QUESTION = "How much does the Pro plan cost per seat?"
PRICE_FACT = "The Pro plan costs twenty-four dollars per seat per month"
WEATHER_QUESTION = "What will the weather be like in Paris tomorrow?"
SUMMARY = "Caller asked what the Pro plan costs and was told twenty-four dollars per seat per month."


@pytest.fixture(scope="module")
def knowledge_base(database_url: str, provider_emulators) -> None:
    """Ingest the test documents with the real CLI, embeddings from the OpenAI emulator."""
    ingest(KB_DIR, database_url, provider_emulators)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kb-audio")
    return {q: synthesize(q, folder / f"{i}.wav") for i, q in enumerate([PRICE_QUESTION, WEATHER_QUESTION])}


async def _ask(caller: Caller, wav: Path, expect: str) -> None:
    # Like a person, the caller waits for the greeting: its first seconds are not for barge-in.
    await caller.wait_for(lambda: caller.agent_finals(), 30.0, "the greeting")
    await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the agent to listen")
    caller.say(read_pcm(wav))
    await caller.wait_for(
        lambda: any(expect in t for t in caller.agent_finals()), 40.0, f"an answer with {expect!r}"
    )


def _instructions_when_asked(emulators, agent_mode: str, question: str) -> str:
    """The instructions the model had when it answered ``question``."""
    if agent_mode == "pipeline":
        request = next(r for r in emulators.log("llm") if question in str(r.get("last_user", "")))
        return " ".join(str(m.get("content")) for m in request["messages"] if m.get("role") == "system")
    response = next(r for r in emulators.log("realtime") if question in str(r.get("last_user", "")))
    return str(response["instructions"])


def _tool_turns(turns: list[dict]) -> list[dict]:
    return [t for t in turns if t["role"] == "tool" and t["tool_name"] == "search_knowledge_base"]


async def test_answer_comes_from_the_right_document_and_the_next_call_remembers(
    knowledge_base,
    firebase_emulator,
    live_token_server,
    provider_emulators,
    agent_mode,
    call_agent,
    livekit_server,
    database_url,
    audio,
) -> None:
    provider_emulators.reset()
    provider_emulators.script(
        stt=[PRICE_QUESTION],
        llm=[
            {
                "tool_calls": [
                    {"name": "search_knowledge_base", "arguments": {"query": "Pro plan price per seat"}}
                ],
                "when": "Pro plan",
            },
            {"answer_from_tool": True, "when": "Pro plan"},
            {"text": SUMMARY, "when": "Transcript of the call"},
        ],
    )
    user = firebase_emulator.sign_up(display_name="Kim Recall")
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret, agent=call_agent
    )
    try:
        await _ask(caller, audio[PRICE_QUESTION], PRICE_FACT)
        await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the answer to end")
    finally:
        await caller.close()  # hang up straight away: the summary must still be written

    row = await stored_call(database_url, room)
    turns = await stored_turns(database_url, row["id"])
    (tool,) = _tool_turns(turns)
    assert tool["tool_arguments"] == {"query": "Pro plan price per seat"}
    result = json.loads(tool["tool_result"]["output"])
    assert result["found"] is True
    assert result["passages"][0]["title"] == "Plans and pricing"
    assert PRICE_FACT in result["passages"][0]["text"]
    assert all(isinstance(p["score"], float) for p in result["passages"])
    assert any(t["role"] == "assistant" and PRICE_FACT in t["content"] for t in turns)

    # Memory: the summary lands on the call and the profile, and the next call's instructions carry it.
    assert (await stored_call(database_url, room, ready=summarized))["summary"] == SUMMARY
    provider_emulators.reset()
    provider_emulators.script(stt=[WEATHER_QUESTION], llm=[{"text": "Noted.", "when": "weather"}])
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret, agent=call_agent
    )
    try:
        await _ask(caller, audio[WEATHER_QUESTION], "Noted.")
    finally:
        await caller.close()
    assert SUMMARY in _instructions_when_asked(provider_emulators, agent_mode, "weather")
    await stored_call(
        database_url, room, ready=summarized
    )  # let this call finish before the next test scripts the LLM
