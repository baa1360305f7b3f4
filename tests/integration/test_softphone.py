"""The baresip softphone harness itself: two or three real baresip processes on loopback.

Later end-to-end tests trust it to dial livekit-sip, be dialled by it, speak at chosen moments,
hear the agent, press keys and follow a REFER; here it proves each of those against itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.audio import find_speech, locate, read_pcm, synthesize
from tests.support.softphone import RATE, Softphone, start_softphone

CALLER = "+15551234567"
QUESTION = "What time does the pharmacy close on Saturdays?"
OTHER = "Could you please transfer me to a human operator?"


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[..., Softphone]]:
    started: list[Softphone] = []

    def start(name: str, **kwargs: object) -> Softphone:
        phone = start_softphone(tmp_path, name, **kwargs)  # type: ignore[arg-type]
        started.append(phone)
        return phone

    yield start
    for phone in started:
        phone.stop()


def test_call_speech_dtmf_and_hangup(phones: Callable[..., Softphone], tmp_path: Path) -> None:
    a = phones("a", user=CALLER)
    b = phones("b", user="+15557654321", auto_answer=True)

    a.call(b.sip_uri)
    incoming = b.wait_for("CALL_INCOMING", 5)
    assert incoming.param == f"sip:{CALLER}@127.0.0.1"  # the callee sees an E.164 calling number
    a.wait_for("CALL_ESTABLISHED", 5)
    b.wait_for("CALL_ESTABLISHED", 5)
    assert a.established_at is not None

    question = synthesize(QUESTION, tmp_path / "question.wav", sample_rate=RATE)
    other = synthesize(OTHER, tmp_path / "other.wav", sample_rate=RATE)
    time.sleep(0.5)  # some silence first, as after an agent's greeting
    played = b.play(question)
    time.sleep(played.duration + 0.6)

    heard = a.heard()
    offset, score = locate(heard.samples, read_pcm(question), RATE)
    _, wrong = locate(heard.samples, read_pcm(other), RATE)
    assert score > 0.9 and wrong < 0.75, (score, wrong)  # measured 1.00 and 0.60
    # Heard where it was played: sending, the network and a 100 ms jitter buffer in between.
    delay = heard.at(offset) - played.started_at
    assert 0.0 < delay < 0.4, delay
    segments = find_speech(heard.samples, RATE)
    assert len(segments) == 1 and abs(segments[0][0] - offset) < 0.15, (segments, offset)
    assert heard.started_at is not None and 0 < heard.started_at - a.established_at < 0.5

    a.send_dtmf("12#")
    b.wait_for("CALL_DTMF_START", 2)
    deadline = time.monotonic() + 2
    while b.dtmf_received() != "12#" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.dtmf_received() == "12#"

    a.hangup()
    assert a.close_reason == "Connection reset by user"
    b.wait_for("CALL_CLOSED", 5)
    assert b.close_reason == "Connection reset by peer"


def test_reject_and_unanswered(phones: Callable[..., Softphone]) -> None:
    a = phones("a", user=CALLER)
    busy = phones("busy", user="busy", reject_code=486)
    ringing = phones("ringing", user="ringing")

    a.call(busy.sip_uri)
    closed = a.wait_for("CALL_CLOSED", 5)
    assert closed.param == "486 Rejected"

    start = a.call(ringing.sip_uri)
    a.wait_for("CALL_RINGING", 5, since=start)
    time.sleep(1)
    assert ringing.established_at is None and a.call_state is not None and a.call_state.closed_at is None
    a.hangup()  # CANCEL
    ringing.wait_for("CALL_CLOSED", 5)


def test_refer_dials_the_target(phones: Callable[..., Softphone]) -> None:
    a = phones("a", user=CALLER)
    agent = phones("agent", user="agent", auto_answer=True)
    human = phones("human", user="+15550000001", auto_answer=True, answer_delay=0.5)

    a.call(agent.sip_uri)
    first = a.wait_for("CALL_ESTABLISHED", 5)
    agent.wait_for("CALL_ESTABLISHED", 5)
    agent.command("transfer", human.sip_uri)  # the agent's side sends REFER

    transfer = a.wait_for("TRANSFER", 5)
    assert transfer.param == human.sip_uri and transfer.call_id == first.call_id
    assert human.wait_for("CALL_INCOMING", 5).param == f"sip:{CALLER}@127.0.0.1"
    second = a.wait_for("CALL_ESTABLISHED", 5, since=transfer.at)
    assert second.call_id != first.call_id
    assert agent.wait_for("CALL_CLOSED", 5).param == "Call transfered"
    a.wait_for("CALL_CLOSED", 5, call_id=first.call_id)

    time.sleep(0.5)
    assert a.heard().started_at is not None and a.heard().duration > 0.2  # the new call has audio
    human.hangup()
    a.wait_for("CALL_CLOSED", 5, call_id=second.call_id)
