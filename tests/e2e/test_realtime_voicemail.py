"""Realtime mode on an outbound phone call that reaches an answering machine.

An operator's `POST /calls` goes to a token server whose AGENT_NAME is a realtime worker; the
customer's softphone answers with a voicemail greeting. The agent must leave the voicemail
message instead of answering the greeting, as in pipeline mode (`test_phone_calls.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import prompts
from tests.e2e.conftest import CUSTOMER_NUMBER, REALTIME_WORKERS, customer_line
from tests.e2e.test_phone_calls import heard_utterance, phone_call_row, place_call
from tests.support.audio import synthesize
from tests.support.token_server import TokenServer, start_token_server


@pytest.fixture
def realtime_token_server(
    tmp_path_factory: pytest.TempPathFactory, live_token_server_env: dict[str, str], call_agent: str
) -> Iterator[TokenServer]:
    """The operator API, dispatching outbound calls to the realtime worker under test."""
    env = {**live_token_server_env, "AGENT_NAME": call_agent}
    server = start_token_server(tmp_path_factory.mktemp("realtime-token-server"), env, name="rt-token-server")
    yield server
    server.service.stop()


@pytest.mark.parametrize("agent_mode", list(REALTIME_WORKERS))
async def test_realtime_outbound_call_reaching_voicemail_leaves_a_message(
    agent_mode: str,
    tmp_path,
    firebase_emulator,
    realtime_token_server,
    provider_emulators,
    database_url,
    livekit_server,
    sip_trunks,
) -> None:
    greeting = "Hi, you have reached Sam. Please leave a message after the tone."
    provider_emulators.reset()
    # Were the greeting answered, the model would say this.
    provider_emulators.script(stt=[greeting], llm=[{"text": "Hello Sam, how are you today?", "when": "Sam"}])
    async with customer_line(tmp_path, livekit_server, auto_answer=True) as customer:
        purpose = "your renewal"
        call_id = await place_call(firebase_emulator, realtime_token_server, CUSTOMER_NUMBER, purpose)
        answered = await asyncio.to_thread(customer.wait_for, "CALL_ESTABLISHED", 20)
        customer.play(synthesize(greeting, tmp_path / "voicemail.wav", sample_rate=8000))
        message = prompts.line("voicemail_message", purpose=purpose)
        await heard_utterance(customer, message, within=40)
        await asyncio.to_thread(customer.wait_for, "CALL_CLOSED", 30, since=answered.at)
    row = await phone_call_row(database_url, id=call_id, ready=lambda r: r["outcome"] is not None)
    assert row["end_reason"] == "voicemail" and row["outcome"] == "follow_up"
    # The realtime model heard the greeting but was never asked to answer it.
    realtime = provider_emulators.log("realtime")
    assert any(greeting in str(r.get("text")) for r in realtime if r.get("event") == "utterance")
    answers = [r for r in realtime if r.get("event") == "response" and not r.get("verbatim")]
    assert answers == [], answers
