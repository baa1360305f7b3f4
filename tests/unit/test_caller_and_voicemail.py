"""What the agent may say about a caller, how it tells a voicemail greeting, and call metadata."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from agent.call_metadata import parse_call_metadata
from agent.caller import Caller
from agent.outbound import looks_like_voicemail
from db.profiles import Profile, UserSettings

PAT = Profile(
    id=uuid.uuid4(),
    firebase_uid=None,
    phone_e164="+15550100123",
    display_name="Pat Phone",
    email="pat@example.com",
    subscription_tier="enterprise",
    last_interaction_summary="Asked for a refund of the March invoice.",
    last_interaction_at=None,
)
ACCOUNT_FACTS = ("Pat Phone", "enterprise", "refund of the March invoice", "pat@example.com")


def phone_caller(**fields: Any) -> Caller:
    """A phone caller whose number matched Pat's profile, before any PIN."""
    return Caller(
        profile=PAT,
        settings=UserSettings(voice_id=None, greeting=None, language="en"),
        verified=False,
        number="+15550100123",
        **fields,
    )


# --- what the agent is told about the caller ----------------------------------------------------------


def test_an_unverified_phone_caller_reveals_nothing_about_the_account() -> None:
    caller = phone_caller()
    text = caller.describe()
    for fact in ACCOUNT_FACTS:
        assert fact not in text
    assert "PIN" in text and "verify_caller" in text
    assert caller.name is None
    assert not caller.known


def test_after_verification_the_account_is_described() -> None:
    caller = phone_caller().as_verified()
    text = caller.describe()
    assert "Name: Pat Phone" in text
    assert "Plan: enterprise" in text
    assert "Asked for a refund of the March invoice." in text
    assert "verify_caller" not in text
    assert caller.name == "Pat Phone"
    assert caller.known


def test_verifying_keeps_who_and_why() -> None:
    before = phone_caller(purpose="your renewal next week")
    after = before.as_verified()
    assert after.profile == before.profile and after.number == before.number
    assert after.purpose == before.purpose
    assert before.name is None  # the original is unchanged: still locked


def test_an_outbound_call_states_its_purpose_before_and_after_verification() -> None:
    caller = phone_caller(purpose="your renewal next week")
    assert "purpose of the call: your renewal next week" in caller.describe()
    assert "Pat Phone" not in caller.describe()
    assert "purpose of the call: your renewal next week" in caller.as_verified().describe()


def test_an_unknown_caller_is_told_apart_and_has_no_name() -> None:
    caller = Caller(verified=False, number="+15550100999")
    assert "unidentified" in caller.describe()
    assert caller.name is None and not caller.known
    assert caller.as_verified().name is None


def test_a_signed_in_web_caller_is_known_at_once() -> None:
    caller = Caller(profile=PAT)
    assert caller.name == "Pat Phone" and caller.known
    assert "Name: Pat Phone" in caller.describe()


def test_a_profile_without_a_summary_or_name_is_described_plainly() -> None:
    quiet = dataclasses.replace(PAT, display_name=None, last_interaction_summary=None)
    text = Caller(profile=quiet).describe()
    assert "Name: unknown" in text
    assert "Last time" not in text


# --- voicemail or a person ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "greeting",
    [
        "Hi, you've reached Sam. Please leave a message after the tone.",
        "The person you are calling is not available.",
        "The mailbox is full and cannot accept any messages at this time.",
        "You have reached the voicemail of 555 0100.",
        "Sorry I can't take your call right now, leave me a message.",
        "Hello, we are unavailable at the moment. Please record your message after the beep.",
        "PLEASE LEAVE YOUR MESSAGE",
    ],
)
def test_voicemail_greetings_are_recognised(greeting: str) -> None:
    assert looks_like_voicemail(greeting)


@pytest.mark.parametrize(
    "reply",
    [
        "Hello?",
        "Yes, speaking",
        "Hi, who is this?",
        "Hello, this is Sam.",
        "Yeah, what's it about?",
        "Oh hi, I was expecting your call.",
        "",
    ],
)
def test_a_person_answering_is_not_taken_for_voicemail(reply: str) -> None:
    assert not looks_like_voicemail(reply)


# --- call metadata on the dispatch --------------------------------------------------------------------


def test_an_outbound_call_without_a_number_is_rejected() -> None:
    call_id = str(uuid.uuid4())
    assert parse_call_metadata(json.dumps({"channel": "pstn_outbound", "call_id": call_id})) is None
    assert (
        parse_call_metadata(json.dumps({"channel": "pstn_outbound", "call_id": call_id, "phone_number": ""}))
        is None
    )


def test_an_outbound_call_carries_number_and_purpose() -> None:
    call_id = uuid.uuid4()
    meta = parse_call_metadata(
        json.dumps(
            {
                "channel": "pstn_outbound",
                "call_id": str(call_id),
                "phone_number": "+15550100123",
                "purpose": "your renewal next week",
            }
        )
    )
    assert meta is not None
    assert meta.call_id == call_id and meta.phone_number == "+15550100123"
    assert meta.purpose == "your renewal next week"
    assert meta.is_phone


def test_an_inbound_phone_call_without_an_id_gets_a_fresh_one() -> None:
    raw = json.dumps({"channel": "pstn_inbound"})
    first, second = parse_call_metadata(raw), parse_call_metadata(raw)
    assert first is not None and second is not None
    assert isinstance(first.call_id, uuid.UUID) and first.call_id.version == 4
    assert first.call_id != second.call_id  # one call record per call, never shared
    assert first.is_phone


@pytest.mark.parametrize(
    "number",
    ["15550100123", "+0155501001", "+1 555 010 0123", "+1555", "+1234567890123456", "tel:+15550100123"],
)
def test_the_number_to_dial_must_be_e164(number: str) -> None:
    raw = {"channel": "pstn_outbound", "call_id": str(uuid.uuid4()), "phone_number": number, "purpose": "a"}
    assert parse_call_metadata(json.dumps(raw)) is None
    assert parse_call_metadata(json.dumps({**raw, "phone_number": "+15550100123"})) is not None


def test_an_outbound_call_needs_a_purpose() -> None:
    raw = {"channel": "pstn_outbound", "call_id": str(uuid.uuid4()), "phone_number": "+15550100123"}
    assert parse_call_metadata(json.dumps(raw)) is None


def test_an_overlong_purpose_is_rejected() -> None:
    raw = {"channel": "pstn_outbound", "phone_number": "+15550100123", "purpose": "x" * 501}
    assert parse_call_metadata(json.dumps(raw)) is None
    assert parse_call_metadata(json.dumps({**raw, "purpose": "x" * 500})) is not None


def test_a_web_call_is_not_a_phone_call() -> None:
    meta = parse_call_metadata(json.dumps({"channel": "web", "call_id": str(uuid.uuid4())}))
    assert meta is not None and not meta.is_phone
