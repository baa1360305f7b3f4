"""Phone calls over real SIP on loopback: baresip (PCMU) <-> livekit-sip <-> LiveKit <-> the agent.

Nothing here is simulated but the paid AI providers: the softphone sends an espeak-ng question
recorded at 8 kHz and records what it hears; what it heard is matched against the same text
rendered the way the TTS emulator renders it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from livekit import api
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import prompts
import prompts.recorded
from tests.e2e.conftest import COMPANY_NUMBER, CUSTOMER_NUMBER, customer_line
from tests.emulators.speech import synthesize_pcm
from tests.support.audio import find_speech, locate, synthesize
from tests.support.softphone import Softphone, start_softphone
from tests.support.web_call import stored_events, stored_turns
from voicedesk.pins import hash_pin

CALLER_NUMBER = "+15551234567"
QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to five, Monday to Friday."
SUMMARY_ITEM = {
    "text": json.dumps({"summary": "Caller asked for the opening hours.", "outcome": "resolved"}),
    "when": "Transcript of the call",
}
MATCH = 0.6  # locate() score of the right utterance; a different one scores well below

pytestmark = pytest.mark.usefixtures("agent_worker", "sip_trunks")


# --- helpers ---------------------------------------------------------------------------------


async def spoken(text: str) -> np.ndarray:
    return np.frombuffer(await synthesize_pcm(text, 8000), dtype=np.int16)


def first_sentence(text: str) -> str:
    return text.split(". ")[0].split("? ")[0]


async def wait_until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def recorded(name: str, from_sentence: int = 0) -> np.ndarray:
    """A line pre-recorded in ``prompts/audio`` (no TTS involved), at the phone's 8 kHz, from its
    ``from_sentence``-th sentence (a pause in the speech) on: a short needle is matched even when
    a loaded host stretched some of what the phone heard."""
    convert = [
        "sox",
        str(prompts.recorded.path(name)),
        *"-t raw -r 8000 -c 1 -b 16 -e signed-integer -".split(),
    ]
    raw = subprocess.run(convert, check=True, capture_output=True).stdout
    samples = np.frombuffer(raw, dtype=np.int16)
    speech = find_speech(samples, 8000)  # the agent may hang up right after the last word
    return samples[int(speech[from_sentence][0] * 8000) : int(speech[-1][1] * 8000)]


async def heard_utterance(
    phone: Softphone,
    text: str,
    *,
    after_s: float = 0.0,
    within: float = 20,
    needle: np.ndarray | None = None,
    call_id: str | None = None,
) -> float:
    """Wait until ``text`` is heard after ``after_s`` into the recording; its offset in seconds.

    ``needle``: the audio to find (default: ``text``'s first sentence as the TTS emulator says it).
    ``call_id``: the call to listen to (default: the newest one with audio).
    """
    if needle is None:
        needle = await spoken(first_sentence(text))
    rate = 8000

    def found() -> float | None:
        heard = phone.heard(call_id)
        start = int(after_s * rate)
        if heard.samples.size - start < needle.size:
            return None
        offset, score = locate(heard.samples[start:], needle, rate)
        return after_s + offset if score >= MATCH else None

    try:
        return await wait_until(found, within, f"{text!r} to be heard")
    except AssertionError:
        heard = phone.heard(call_id)
        _, score = locate(heard.samples[int(after_s * rate) :], needle, rate)
        raise AssertionError(
            f"{text!r} not heard (best score {score:.2f}); speech at {find_speech(heard.samples, rate)}"
        ) from None


async def quiet_for(phone: Softphone, seconds: float, within: float = 30) -> float:
    """Wait until the far end has been silent for ``seconds``; the offset where speech ended."""

    def silent() -> float | None:
        heard = phone.heard()
        segments = find_speech(heard.samples, 8000)
        end = segments[-1][1] if segments else 0.0
        return end if segments and heard.duration - end >= seconds else None

    return await wait_until(silent, within, "the agent to stop talking")


async def phone_call_row(
    database_url: str, *, ready: Callable[[dict[str, Any]], bool], within: float = 25, **where: Any
) -> dict[str, Any]:
    """The newest `calls` row matching ``where`` (column=value) once ``ready(row)`` holds."""
    clause = " and ".join(f"{column} = %s" for column in where)
    row = None
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        for _ in range(int(within / 0.25)):
            async with pool.connection() as conn:
                cur = await conn.execute(
                    f"select * from calls where {clause} order by started_at desc limit 1",
                    tuple(where.values()),
                )
                row = await cur.fetchone()
            if row and ready(row):
                return row
            await asyncio.sleep(0.25)
    raise AssertionError(f"calls row {where} not ready: {row}")


def ended(row: dict[str, Any]) -> bool:
    return row["ended_at"] is not None


async def execute(database_url: str, sql: str, *args: Any) -> dict[str, Any] | None:
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute(sql, args)
            return await cur.fetchone() if cur.description else None


async def room_names(livekit_server: Any) -> set[str]:
    lk = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    try:
        return {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
    finally:
        await lk.aclose()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Softphone]:
    softphone = start_softphone(tmp_path, "caller", user=CALLER_NUMBER)
    yield softphone
    softphone.stop()


@pytest.fixture
def question_wav(tmp_path: Path) -> Path:
    return synthesize(QUESTION, tmp_path / "question.wav", sample_rate=8000)


@pytest.fixture
async def caller_profile(database_url: str) -> Any:
    """A customer whose profile has the calling number and a phone PIN (4821)."""
    await execute(database_url, "delete from profiles where phone_e164 = %s", CALLER_NUMBER)
    row = await execute(
        database_url,
        "insert into profiles (phone_e164, display_name, subscription_tier) values (%s, 'Pat Phone', 'pro')"
        " returning id",
        CALLER_NUMBER,
    )
    assert row is not None
    await execute(
        database_url,
        "insert into user_settings (profile_id, phone_pin_hash) values (%s, %s)",
        row["id"],
        hash_pin("4821"),
    )
    return row["id"]


@pytest.fixture
async def app_user_with_pin(database_url: str, firebase_emulator, live_token_server) -> Any:
    """The same person as in the app: Firebase user with the calling number, PIN set in settings."""
    await execute(database_url, "delete from profiles where phone_e164 = %s", CALLER_NUMBER)
    user = firebase_emulator.sign_up(display_name="Pat Phone")
    firebase_emulator.update_profile(user.uid, phone=CALLER_NUMBER)
    token = firebase_emulator.sign_in(user.email, user.password)
    async with httpx.AsyncClient(base_url=live_token_server.url, timeout=15) as http:
        resp = await http.put(
            "/me/settings", json={"phone_pin": "4821"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert resp.status_code == 200 and resp.json()["phone_pin_set"], resp.text
    row = await execute(database_url, "select id from profiles where firebase_uid = %s", user.uid)
    assert row is not None
    return row["id"]


@pytest.fixture
def policy(call_policy_file: Path) -> Iterator[Callable[[str], None]]:
    """Write the worker's call policy for one test; it is admit-all again afterwards."""
    yield call_policy_file.write_text
    call_policy_file.write_text("{}\n")


# --- inbound ---------------------------------------------------------------------------------


async def test_inbound_call_is_greeted_answered_and_stored(
    phone, question_wav, caller_profile, provider_emulators, database_url, sip_trunks, livekit_server
) -> None:
    provider_emulators.reset()
    provider_emulators.script(stt=[QUESTION], llm=[{"text": ANSWER, "when": QUESTION}, SUMMARY_ITEM])
    greeting = prompts.line("phone_greeting")

    phone.call(sip_trunks.uri(COMPANY_NUMBER))
    answered = phone.wait_for("CALL_ESTABLISHED", 15).at

    # The greeting starts within 1.5 s of the answer (the agent publishes its audio first;
    # livekit-sip only answers then), and it is the greeting, not just any sound.
    offset = await heard_utterance(phone, greeting, within=10)
    assert phone.heard().at(offset) - answered <= 1.5, (
        f"greeting began {phone.heard().at(offset) - answered:.2f}s after answer"
    )
    # An unverified phone caller is not greeted by name, even though the number matches.
    greeting_end = await quiet_for(phone, 0.8)

    phone.play(question_wav)
    await heard_utterance(phone, ANSWER, after_s=greeting_end, within=30)
    await quiet_for(phone, 0.8)
    phone.hangup()

    row = await phone_call_row(
        database_url, from_number=CALLER_NUMBER, ready=lambda r: r["summary"] is not None
    )
    assert row["channel"] == "pstn_inbound" and row["direction"] == "inbound"
    assert row["status"] == "completed" and row["end_reason"] == "caller_hung_up"
    assert row["to_number"] == COMPANY_NUMBER
    assert row["profile_id"] == caller_profile, "the caller's profile was matched by their number"
    turns = await stored_turns(database_url, row["id"])
    said = [(t["role"], t["content"]) for t in turns if t["role"] != "tool"]
    assert ("user", QUESTION) in said and ("assistant", ANSWER) in said
    assert said[0] == ("assistant", greeting)
    events = await stored_events(database_url, row["id"])
    policy_events = [e["detail"] for e in events if e["kind"] == "policy"]
    assert policy_events and policy_events[0]["allowed"] is True
    assert row["room_name"] not in await room_names(livekit_server)


@pytest.mark.parametrize(
    ("policy_yaml", "rule", "message_key"),
    [
        (f'deny: ["{CALLER_NUMBER}"]\n', "deny_list", "denied"),
        ('timezone: UTC\nbusiness_hours:\n  {closed_days}: "00:00-24:00"\n', "business_hours", "closed"),
    ],
    ids=["deny-list", "outside-business-hours"],
)
async def test_call_outside_policy_hears_why_and_is_ended(
    phone, policy, policy_yaml, rule, message_key, database_url, sip_trunks
) -> None:
    today = time.gmtime().tm_wday
    other_days = ",".join(
        d for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")) if i != today
    )
    policy(policy_yaml.replace("{closed_days}", other_days))
    from agent.call_policy import PolicyMessages

    message = getattr(PolicyMessages(), message_key)
    started = phone.call(sip_trunks.uri(COMPANY_NUMBER))
    phone.wait_for("CALL_ESTABLISHED", 15)
    await heard_utterance(phone, message, within=15)
    # The agent hangs up after the message: the softphone gets a BYE.
    closed = phone.wait_for("CALL_CLOSED", 20, since=started)
    assert "reset by peer" in (closed.param or "")

    row = await phone_call_row(database_url, from_number=CALLER_NUMBER, ready=ended)
    assert row["end_reason"] == rule
    decisions = [e["detail"] for e in await stored_events(database_url, row["id"]) if e["kind"] == "policy"]
    assert decisions == [{"allowed": False, "rule": rule, "reason": decisions[0]["reason"]}], (
        "the refusal is recorded on the call"
    )


# --- outbound --------------------------------------------------------------------------------


async def place_call(firebase_emulator, live_token_server, number: str, purpose: str) -> uuid.UUID:
    """An operator (custom claim) asks the operator API to have the agent call ``number``."""
    user = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(user.uid, {"operator": True})
    token = firebase_emulator.sign_in(user.email, user.password)
    async with httpx.AsyncClient(base_url=live_token_server.url, timeout=15) as http:
        resp = await http.post(
            "/calls",
            json={"phone_number": number, "purpose": purpose},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert resp.status_code == 202, resp.text
    return uuid.UUID(resp.json()["call_id"])


async def test_outbound_call_reaches_the_customer_and_the_agent_speaks_first(
    tmp_path,
    firebase_emulator,
    live_token_server,
    provider_emulators,
    database_url,
    livekit_server,
    sip_trunks,
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[SUMMARY_ITEM])
    async with customer_line(tmp_path, livekit_server, auto_answer=True, answer_delay=0.5) as customer:
        purpose = "your renewal next week"
        call_id = await place_call(firebase_emulator, live_token_server, CUSTOMER_NUMBER, purpose)

        ringing = await phone_call_row(database_url, id=call_id, ready=lambda r: r["status"] != "pending")
        assert ringing["status"] in ("ringing", "in_progress")
        answered = await asyncio.to_thread(customer.wait_for, "CALL_ESTABLISHED", 20)
        # The callee said nothing: the agent speaks first, and says why it calls.
        opener = prompts.line("outbound_opener", purpose=purpose)
        offset = await heard_utterance(customer, opener, within=10)
        assert customer.heard().at(offset) - answered.at <= 1.5
        row = await phone_call_row(database_url, id=call_id, ready=lambda r: r["answered_at"] is not None)
        assert row["status"] == "in_progress"
        await quiet_for(customer, 1.0)  # espeak pauses ~0.5 s between the opener's sentences
        customer.hangup()

    row = await phone_call_row(database_url, id=call_id, ready=ended)
    assert row["channel"] == "pstn_outbound" and row["direction"] == "outbound"
    assert row["status"] == "completed" and row["to_number"] == CUSTOMER_NUMBER
    assert row["metadata"]["purpose"] == purpose and row["started_by"]
    turns = await stored_turns(database_url, call_id)
    assert turns and turns[0]["role"] == "assistant" and turns[0]["content"] == opener
    dials = [e["detail"] for e in await stored_events(database_url, call_id) if e["kind"] == "dial"]
    assert dials and dials[0]["status"] == "answered"


async def test_outbound_call_nobody_answers_ends_as_no_answer(
    tmp_path,
    firebase_emulator,
    live_token_server,
    provider_emulators,
    database_url,
    livekit_server,
    sip_trunks,
) -> None:
    provider_emulators.reset()
    async with customer_line(tmp_path, livekit_server) as customer:  # rings, never answers
        call_id = await place_call(firebase_emulator, live_token_server, CUSTOMER_NUMBER, "a missed payment")
        await asyncio.to_thread(customer.wait_for, "CALL_INCOMING", 20)
        # OUTBOUND_RINGING_SECONDS is 8 for the test worker.
        row = await phone_call_row(database_url, id=call_id, ready=ended, within=40)
    assert row["status"] == "no_answer", row
    assert row["answered_at"] is None and row["end_reason"] == "no_answer"
    assert row["room_name"] not in await room_names(livekit_server)


# --- the caller hangs up, presses keys, asks for a person --------------------------------------


def job_processes(worker) -> int:
    return len(psutil.Process(worker.proc.pid).children(recursive=True))


async def test_caller_hangs_up_during_the_reply(
    phone, question_wav, provider_emulators, database_url, sip_trunks, livekit_server, agent_worker
) -> None:
    long_answer = " ".join(
        [
            "We are open from nine to five, Monday to Friday.",
            "On Saturdays we open from ten until two in the afternoon.",
            "On public holidays the office is closed, but the help center stays online.",
            "You can also write to us at any time and we reply within one working day.",
        ]
    )
    provider_emulators.reset()
    provider_emulators.script(stt=[QUESTION], llm=[{"text": long_answer, "when": QUESTION}, SUMMARY_ITEM])
    processes_before = job_processes(agent_worker)

    dialled = phone.call(sip_trunks.uri(COMPANY_NUMBER))
    phone.wait_for("CALL_ESTABLISHED", 15)
    greeting_end = await quiet_for(phone, 0.8)
    phone.play(question_wav)
    await heard_utterance(phone, long_answer, after_s=greeting_end, within=30)
    phone.hangup()  # mid-reply: the answer takes ~15 s to say
    hung_up = time.monotonic()

    row = await phone_call_row(database_url, from_number=CALLER_NUMBER, ready=ended)
    assert row["status"] == "completed" and row["end_reason"] == "caller_hung_up"
    true_duration = hung_up - dialled
    assert abs(row["duration_seconds"] - true_duration) < 2.5, (row["duration_seconds"], true_duration)
    turns = await stored_turns(database_url, row["id"])
    reply = [t for t in turns if t["role"] == "assistant" and t["content"] != prompts.line("phone_greeting")]
    assert reply and reply[-1]["interrupted"] and len(reply[-1]["content"]) < len(long_answer)
    # Nothing is left behind: the room is gone and the worker is back to its idle processes.
    assert row["room_name"] not in await room_names(livekit_server)
    await wait_until(lambda: job_processes(agent_worker) <= processes_before, 20, "the job process to end")


async def test_pressing_zero_transfers_to_a_person_with_a_summary(
    phone, caller_profile, provider_emulators, database_url, sip_trunks, human_phone
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[SUMMARY_ITEM])
    started = phone.call(sip_trunks.uri(COMPANY_NUMBER))
    phone.wait_for("CALL_ESTABLISHED", 15)
    await quiet_for(phone, 0.8)
    phone.send_dtmf("0")
    await heard_utterance(phone, prompts.line("transfer"), within=15)

    # SIP REFER: the caller's phone dials the person, who answers.
    transfer = await asyncio.to_thread(phone.wait_for, "TRANSFER", 20, since=started)
    assert transfer.param and human_phone.sip_uri.split(";")[0] in transfer.param
    await asyncio.to_thread(human_phone.wait_for, "CALL_ESTABLISHED", 15, since=started)
    human_phone.hangup()

    row = await phone_call_row(database_url, from_number=CALLER_NUMBER, ready=ended)
    assert row["end_reason"] == "transferred" and row["outcome"] in (None, "escalated")
    events = await stored_events(database_url, row["id"])
    kinds = [e["kind"] for e in events]
    assert "dtmf" in kinds and "transfer" in kinds and "transferred" in kinds
    handoff = next(e["detail"] for e in events if e["kind"] == "transfer")
    assert handoff["reason"] == "caller pressed 0" and handoff["summary"], "the person gets a summary"


async def test_keypad_pin_verifies_the_caller(
    phone, caller_profile, provider_emulators, database_url, sip_trunks
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[SUMMARY_ITEM])
    phone.call(sip_trunks.uri(COMPANY_NUMBER))
    phone.wait_for("CALL_ESTABLISHED", 15)
    greeting_end = await quiet_for(phone, 0.8)
    phone.send_dtmf("*9999#")
    await heard_utterance(phone, prompts.line("pin_rejected"), after_s=greeting_end, within=15)
    rejected_end = await quiet_for(phone, 0.5)
    phone.send_dtmf("*4821#")
    await heard_utterance(phone, prompts.line("pin_verified"), after_s=rejected_end, within=15)
    phone.hangup()

    row = await phone_call_row(database_url, from_number=CALLER_NUMBER, ready=ended)
    events = await stored_events(database_url, row["id"])
    assert [e["detail"]["result"] for e in events if e["kind"] == "verification"] == ["wrong", "verified"]
    # The PIN's digits are never stored: the keypad entry is recorded as a single "PIN" event.
    stored = json.dumps([e["detail"] for e in events])
    assert "4821" not in stored and "9999" not in stored


async def test_spoken_pin_unlocks_the_account_only_after_verification(
    phone, app_user_with_pin, provider_emulators, database_url, sip_trunks
) -> None:
    """The app user's PIN, set in their settings, unlocks their account on the phone; until it
    matches, the LLM is told nothing about the account."""
    said = "My PIN is 4 8 2 1."
    provider_emulators.reset()
    provider_emulators.script(
        stt=[said],
        llm=[
            {"when": "PIN is", "tool_calls": [{"name": "verify_caller", "arguments": {"pin": "4821"}}]},
            {"when": "PIN is", "text": "Thanks Pat, you're verified."},
            SUMMARY_ITEM,
        ],
    )
    phone.call(sip_trunks.uri(COMPANY_NUMBER))
    phone.wait_for("CALL_ESTABLISHED", 15)
    greeting_end = await quiet_for(phone, 0.8)
    phone.play(synthesize(said, phone.dir / "pin.wav", sample_rate=8000))
    await heard_utterance(phone, "Thanks Pat, you're verified.", after_s=greeting_end, within=30)
    phone.hangup()

    requests = [e for e in provider_emulators.log("llm") if e.get("event") == "request"]
    before = next(r for r in requests if (r.get("answer") or {}).get("tool_calls"))
    after = next(r for r in requests if "Thanks Pat" in str((r.get("answer") or {}).get("text")))
    assert "Pat Phone" not in json.dumps(before) and "not yet verified" in json.dumps(before)
    assert "Pat Phone" in json.dumps(after), "verified: the instructions now carry the account"

    row = await phone_call_row(
        database_url, from_number=CALLER_NUMBER, ready=lambda r: r["summary"] is not None
    )
    turns = await stored_turns(database_url, row["id"])
    tool = next(t for t in turns if t["tool_name"] == "verify_caller")
    assert tool["tool_arguments"] == {"redacted": True}, "the PIN is never stored"
    spoken_pin = next(t["content"] for t in turns if t["role"] == "user")
    assert spoken_pin == "My PIN is [PIN].", "not in the transcript either"
    assert json.loads(tool["tool_result"]["output"])["result"] == "verified"


async def test_over_the_concurrency_cap_a_caller_hears_the_busy_message(
    phone, tmp_path, policy, provider_emulators, database_url, sip_trunks
) -> None:
    provider_emulators.reset()
    policy("max_concurrent_calls: 1\n")
    for _ in range(120):  # earlier tests' calls still finishing would count against the cap
        row = await execute(
            database_url,
            "select count(*) as n from calls where channel = 'pstn_inbound' and ended_at is null",
        )
        if row and row["n"] == 0:
            break
        await asyncio.sleep(0.25)
    second = start_softphone(tmp_path, "second", user="+15559876543")
    try:
        phone.call(sip_trunks.uri(COMPANY_NUMBER))
        phone.wait_for("CALL_ESTABLISHED", 15)
        await quiet_for(phone, 0.5)  # the first call is live and stored
        started = second.call(sip_trunks.uri(COMPANY_NUMBER))
        second.wait_for("CALL_ESTABLISHED", 15)
        from agent.call_policy import PolicyMessages

        await heard_utterance(second, PolicyMessages().busy, within=15)
        await asyncio.to_thread(second.wait_for, "CALL_CLOSED", 20, since=started)
        assert phone.call_state is not None and phone.call_state.closed_at is None, "the first call goes on"
        phone.hangup()
    finally:
        second.stop()
    row = await phone_call_row(database_url, from_number="+15559876543", ready=ended)
    assert row["end_reason"] == "max_concurrent_calls"


async def test_outbound_call_to_a_busy_line_ends_as_busy(
    tmp_path,
    firebase_emulator,
    live_token_server,
    provider_emulators,
    database_url,
    livekit_server,
    sip_trunks,
) -> None:
    provider_emulators.reset()
    async with customer_line(tmp_path, livekit_server, reject_code=486):
        call_id = await place_call(firebase_emulator, live_token_server, CUSTOMER_NUMBER, "your order")
        row = await phone_call_row(database_url, id=call_id, ready=ended, within=30)
    assert row["status"] == "busy" and row["end_reason"] == "busy" and row["answered_at"] is None


async def test_outbound_call_reaching_voicemail_leaves_a_message(
    tmp_path,
    firebase_emulator,
    live_token_server,
    provider_emulators,
    database_url,
    livekit_server,
    sip_trunks,
) -> None:
    greeting = "Hi, you have reached Sam. Please leave a message after the tone."
    provider_emulators.reset()
    provider_emulators.script(stt=[greeting])
    async with customer_line(tmp_path, livekit_server, auto_answer=True) as customer:
        purpose = "your renewal"
        call_id = await place_call(firebase_emulator, live_token_server, CUSTOMER_NUMBER, purpose)
        answered = await asyncio.to_thread(customer.wait_for, "CALL_ESTABLISHED", 20)
        customer.play(synthesize(greeting, tmp_path / "voicemail.wav", sample_rate=8000))
        message = prompts.line("voicemail_message", purpose=purpose)
        await heard_utterance(customer, message, within=30)
        await asyncio.to_thread(customer.wait_for, "CALL_CLOSED", 30, since=answered.at)
    row = await phone_call_row(database_url, id=call_id, ready=lambda r: r["outcome"] is not None)
    assert row["end_reason"] == "voicemail" and row["outcome"] == "follow_up"


# --- every provider of a kind down ---------------------------------------------------------------

# The emulator's keys for every provider of a kind: the primary and its fallback.
EVERY = {"llm": ("llm", "llm_fallback"), "tts": ("tts", "openai_tts")}


async def _every_provider_down_after_the_greeting(
    phone: Softphone, question: Path, provider_emulators, sip_trunks, service: str = "llm"
) -> tuple[str, float, float]:
    """Call, let the greeting end, take every ``service`` provider down, ask. The call's id (a
    transfer adds a second call), the offset in its recording where the greeting ended, and when
    (monotonic) the question ended."""
    provider_emulators.reset()
    provider_emulators.script(stt_default=QUESTION, llm=[{"text": ANSWER, "when": QUESTION}])
    phone.call(sip_trunks.uri(COMPANY_NUMBER))
    call_id = phone.wait_for("CALL_ESTABLISHED", 15).call_id
    assert call_id is not None
    greeting_end = await quiet_for(phone, 0.8)
    for key in EVERY[service]:
        provider_emulators.fault(key, "http_500", count=-1)
    return call_id, greeting_end, phone.play(question).ended_at


async def _outage_record(
    database_url: str, service: str = "llm"
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple]]:
    row = await phone_call_row(database_url, from_number=CALLER_NUMBER, ready=ended, within=40)
    events = await stored_events(database_url, row["id"])
    turns = [(t["role"], t["content"]) for t in await stored_turns(database_url, row["id"])]
    assert row["degraded"] is True
    assert row["status"] == "failed" and row["end_reason"] == "provider_outage", row
    outage = [e["detail"] for e in events if e["kind"] == "provider_outage"]
    assert outage and outage[0]["service"] == service, events
    # What the caller asked and got no answer to is kept, before the recorded line.
    assert ("user", QUESTION) in turns
    return row, events, turns


@pytest.mark.parametrize("service", ["llm", "tts"])
async def test_every_provider_of_a_kind_down_on_a_phone_call_transfers_to_a_person(
    phone, question_wav, provider_emulators, database_url, sip_trunks, human_phone, service: str
) -> None:
    """No provider can think (or speak): the caller hears the recorded line, no TTS needed, and
    is handed to a person."""
    line = prompts.line("outage_transfer")
    started = time.monotonic()
    call_id, greeting_end, asked_until = await _every_provider_down_after_the_greeting(
        phone, question_wav, provider_emulators, sip_trunks, service
    )
    # "Let me connect you with a member of our team."
    offset = await heard_utterance(
        phone, line, after_s=greeting_end, within=40, needle=recorded("outage_transfer", 1), call_id=call_id
    )
    whole, sentence = recorded("outage_transfer"), recorded("outage_transfer", 1)
    line_began = phone.heard(call_id).at(offset) - (whole.size - sentence.size) / 8000
    line_ended = line_began + whole.size / 8000

    # SIP REFER: the caller's phone dials the person, who answers.
    transfer = await asyncio.to_thread(phone.wait_for, "TRANSFER", 30, since=started)
    print(
        f"\nevery {service} down: the recorded line began {line_began - asked_until:.1f} s after the"
        f" question ended; the REFER came {transfer.at - line_ended:.1f} s after the line ended"
    )
    assert transfer.param and human_phone.sip_uri.split(";")[0] in transfer.param
    await asyncio.to_thread(human_phone.wait_for, "CALL_ESTABLISHED", 15, since=started)
    human_phone.hangup()

    _, events, turns = await _outage_record(database_url, service)
    assert turns.index(("user", QUESTION)) < turns.index(("assistant", line))
    # The recorded line announced the hand-over: no second announcement in a TTS voice.
    assert ("assistant", prompts.line("transfer")) not in turns
    kinds = [e["kind"] for e in events]
    handoff = next(e["detail"] for e in events if e["kind"] == "transfer")
    assert handoff["reason"] == f"every {service} provider failed" and handoff["summary"], (
        "the person gets a summary"
    )
    if service == "llm":
        assert QUESTION in handoff["summary"], "the LLM is down: the summary is the transcript's tail"
    assert kinds.index("provider_outage") < kinds.index("transfer") < kinds.index("transferred")
    assert "callback_requested" not in kinds


async def test_every_llm_down_and_the_transfer_refused_promises_a_call_back(
    phone, question_wav, provider_emulators, database_url, sip_trunks, human_phone
) -> None:
    """The person's line refuses the transfer: the caller is promised a call back, recorded too."""
    callback = prompts.line("outage_callback")
    started = time.monotonic()
    human_phone.reject_code = 486  # the session's phone of the person refuses this one call
    try:
        call_id, greeting_end, _ = await _every_provider_down_after_the_greeting(
            phone, question_wav, provider_emulators, sip_trunks
        )
        said = await heard_utterance(
            phone,
            prompts.line("outage_transfer"),
            after_s=greeting_end,
            within=40,
            needle=recorded("outage_transfer", 1),
            call_id=call_id,
        )
        await asyncio.to_thread(phone.wait_for, "TRANSFER", 30, since=started)
        await asyncio.to_thread(human_phone.wait_for, "CALL_INCOMING", 15, since=started)
        # The REFER failed: on the original call the caller hears the recorded call-back promise
        # ("Someone from our team will call you back ..."), then the agent hangs up.
        await heard_utterance(
            phone,
            callback,
            after_s=said + 1,
            within=40,
            needle=recorded("outage_callback", 1),
            call_id=call_id,
        )
        await asyncio.to_thread(phone.wait_for, "CALL_CLOSED", 30, since=started, call_id=call_id)
    finally:
        human_phone.reject_code = None

    _, events, turns = await _outage_record(database_url)
    assert turns.index(("user", QUESTION)) < turns.index(("assistant", callback))
    kinds = [e["kind"] for e in events]
    assert kinds.index("transfer") < kinds.index("transfer_failed") < kinds.index("callback_requested")
    assert "transferred" not in kinds
    promise = next(e["detail"] for e in events if e["kind"] == "callback_requested")
    assert promise["reason"] == "every llm provider failed" and QUESTION in promise["summary"]
