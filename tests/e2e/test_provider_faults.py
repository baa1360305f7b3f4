"""A provider fails during a web call: the caller still gets an answer, from the next provider.

Every component is real (token server, LiveKit, the worker with its fallback adapters,
Postgres); the provider emulators fail on command: 5xx, a stall, or a connection dropped in
the middle of an utterance. For each fault the test checks what the caller hears, measures the
gap from the end of the caller's speech to the first agent audio (printed, and summarised in the
README, never asserted tightly: the machine is shared) and checks the stored record. A drop in
the middle is survived whole: the caller asks once and the next STT hears the whole question,
the next TTS speaks the rest of a cut reply, the next LLM continues a cut reply without
repeating its opening.

When every provider of a kind fails, the caller hears the recorded apology (no provider
needed), is promised a call back, the call ends and is stored as degraded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import prompts
from tests.emulators.endpointing import voiced_span
from tests.emulators.speech import synthesize_pcm
from tests.support.audio import SAMPLE_RATE, read_pcm, synthesize
from tests.support.rtc_caller import Caller
from tests.support.web_call import join_call, stored_call, stored_events, stored_turns

QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to five, Monday to Friday."
# The reply ElevenLabs is cut in, in its second sentence: the next TTS speaks only that one.
MORE = "Is there anything else I can help you with?"
GAPS: dict[str, float] = {}

# (primary provider, fault kind, when the fault is set, fault count). Faults set "before" the
# call hit the first request of the call (STT connects when the session starts); "mid" ones are
# set once the greeting was heard and strike the question (-1: an outage, so the adapter's
# background recovery probe fails too).
FAULTS = [
    ("none", "none", "mid", 0),
    ("stt", "http_500", "before", -1),
    ("stt", "disconnect", "mid", 1),
    ("stt", "stall", "mid", 1),
    ("llm", "http_500", "mid", -1),
    ("llm", "stall", "mid", -1),
    ("llm", "disconnect", "mid", -1),
    ("tts", "http_500", "mid", -1),
    ("tts", "stall", "mid", -1),
    ("tts", "disconnect", "mid", 1),
]
FALLBACK = {"stt": "openai_stt", "llm": "llm_fallback", "tts": "openai_tts"}


@pytest.fixture(scope="module")
def question_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(QUESTION, tmp_path_factory.mktemp("fault-audio") / "question.wav")


@pytest.fixture(scope="module", autouse=True)
def report_gaps(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if GAPS:
        lines = [f"  {name:<28} {gap * 1000:7.0f} ms" for name, gap in GAPS.items()]
        summary = "end of caller's speech -> first agent audio:\n" + "\n".join(lines)
        print("\n" + summary)
        out = Path(str(request.config.rootpath)) / ".pytest_cache" / "provider_fault_gaps.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({k: round(v * 1000) for k, v in GAPS.items()}, indent=2))


def _script(provider_emulators: Any, question_audio: Path, answer: str = ANSWER) -> None:
    provider_emulators.reset()
    # Every utterance is the question: a fallback STT, or a primary's recovery probe, that hears
    # an utterance too cannot shift the script. A provider that hears only part of it
    # transcribes only that part (stt_lengths).
    length = voiced_span(read_pcm(question_audio).tobytes(), SAMPLE_RATE)
    provider_emulators.script(
        stt_default=QUESTION,
        stt_lengths={QUESTION: length},
        llm=[{"text": answer, "when": "opening hours"}] * 3,
    )


async def _start_call(
    firebase_emulator: Any, live_token_server: Any, livekit_server: Any, name: str
) -> tuple[Caller, str]:
    user = firebase_emulator.sign_up(display_name=name)
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret
    )
    await caller.wait_for(lambda: caller.agent_finals(), 60.0, "the greeting")
    await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the greeting to end")
    return caller, room


def _ask(caller: Caller, audio: Path) -> float:
    """Speak the question; returns when (monotonic) the caller's speech ends."""
    pcm = read_pcm(audio)
    caller.say(pcm)
    return time.monotonic() + len(pcm) / SAMPLE_RATE


def _first_audio_after(caller: Caller, t: float) -> float | None:
    return next((f for f in caller.loud_frames if f >= t), None)


@pytest.mark.parametrize(
    ("provider", "kind", "when", "count"), FAULTS, ids=[f"{p}-{k}" for p, k, _, _ in FAULTS]
)
async def test_provider_fault_is_survived_by_the_fallback(
    firebase_emulator,
    live_token_server,
    provider_emulators,
    agent_worker,
    livekit_server,
    database_url,
    question_audio,
    provider: str,
    kind: str,
    when: str,
    count: int,
) -> None:
    # A reply cut mid-way by the TTS: two sentences, ElevenLabs drops 1.5 s into the second (of
    # 2.4 s). The resume counts the words whose timings came with audio the adapter passed on.
    # Unpaced, the emulator sent the whole reply and the cut in one burst, and whether the agent
    # passed on the first sentence's audio before it saw the cut was a race (lost on CI: the
    # first sentence was resumed whole, as designed for unheard words). Streamed at real time,
    # the first sentence has been played 1.5 s before the cut.
    cut_reply = provider == "tts" and kind == "disconnect"
    answer = f"{ANSWER} {MORE}" if cut_reply else ANSWER
    _script(provider_emulators, question_audio, answer)
    after = 1
    if cut_reply:
        provider_emulators.set_latency("tts", rate=1)
        after = round(len(await synthesize_pcm(ANSWER, 24000)) / 2 / 24000 / 0.1) + 15
    if when == "before":
        provider_emulators.fault(provider, kind, count=count)
    caller, room = await _start_call(firebase_emulator, live_token_server, livekit_server, "Fay Fallback")
    try:
        if when == "mid" and provider != "none":
            provider_emulators.fault(provider, kind, count=count, after=after)
        # The caller asks once, whatever fails mid-question: a dropped or stalled STT's audio is
        # replayed to the next one, a cut reply is finished by the next TTS or LLM.
        spoken_until = _ask(caller, question_audio)
        await caller.wait_for(
            lambda: any(answer in t for t in caller.agent_finals()), 60.0, "the answer transcript"
        )
        await caller.wait_for(lambda: caller.heard_since(spoken_until) >= 10, 15.0, "the answer's audio")
        first = _first_audio_after(caller, spoken_until)
        assert first is not None
        GAPS[f"{provider}-{kind}"] = first - spoken_until
        await caller.wait_for(lambda: caller.agent_state() == "listening", 40.0, "the answer to end")
        heard = [t for t in caller.loud_frames if t >= spoken_until]
        finals = caller.agent_finals()
    finally:
        await caller.close()

    # Said once: no reply the caller saw repeats its opening (an LLM cut after two words).
    assert not any("We are We are" in t or t.count(ANSWER) > 1 for t in finals), finals
    if cut_reply:
        # ElevenLabs was cut in the second sentence; OpenAI spoke that sentence, not the first.
        spoken = [e["text"] for e in provider_emulators.log("openai_tts") if e["event"] == "synthesize"]
        assert MORE in spoken and not any(ANSWER in t for t in spoken), spoken
        first_s = next(e["duration"] for e in provider_emulators.log("tts") if e["event"] == "synthesize")
        rest_s = next(
            e["duration"] for e in provider_emulators.log("openai_tts") if e["event"] == "synthesize"
        )
        # The caller heard the first sentence (ElevenLabs) and then the second whole (OpenAI);
        # without the resume, only the first and at most 1.5 s of the second.
        span = heard[-1] - heard[0]
        assert span >= first_s + 0.8 * rest_s, (span, first_s, rest_s)
    if provider == "stt":
        # The fallback STT heard the whole question, not the part after the switch.
        texts = [e["text"] for e in provider_emulators.log("openai_stt") if e.get("text")]
        assert texts and texts[0] == QUESTION, texts
    if provider == "llm" and kind == "disconnect":
        [asked] = [e for e in provider_emulators.log("llm_fallback") if e["event"] == "request"][:1]
        assert asked["messages"][-2] == {"role": "assistant", "content": "We are"}, asked["messages"][-2:]

    # The fallback really served (and the primary really failed).
    if provider != "none":
        assert [e for e in provider_emulators.log(FALLBACK[provider]) if e["event"] != "disconnect"], (
            f"{FALLBACK[provider]} was never asked"
        )
        faulted = [
            e
            for e in provider_emulators.log(provider)
            if e.get("fault") or e["event"] in ("stall", "disconnect", "error")
        ]
        assert faulted, f"the {provider} fault never struck"

    # The record is complete: the question and the answer stored, in order, and the switch noted.
    row = await stored_call(database_url, room)
    assert row["status"] == "completed" and row["end_reason"] == "caller_hung_up"
    assert not row["degraded"]
    turns = [
        (t["role"], t["content"]) for t in await stored_turns(database_url, row["id"]) if t["role"] != "tool"
    ]
    assert turns[0][0] == "assistant" and "Fay" in turns[0][1]
    assert ("user", QUESTION) in turns  # the whole question, asked once
    assert [t for t in turns if t[0] == "user"] == [("user", QUESTION)], turns
    answers = [i for i, (role, text) in enumerate(turns) if role == "assistant" and ANSWER in text]
    assert answers and turns.index(("user", QUESTION)) < answers[-1], turns
    assert turns[answers[-1]][1] == answer, turns  # what was spoken, once
    events = await stored_events(database_url, row["id"])
    switched = [e["detail"] for e in events if e["kind"] == "provider_unavailable"]
    if provider != "none":  # (with no fault a slow primary on a loaded host may be switched too)
        assert any(d["service"] == provider and d["position"] == 0 for d in switched), events


@pytest.mark.parametrize("provider", ["llm", "tts", "stt"])
async def test_every_provider_of_a_kind_down_plays_the_recorded_apology(
    firebase_emulator,
    live_token_server,
    provider_emulators,
    agent_worker,
    livekit_server,
    database_url,
    question_audio,
    provider: str,
) -> None:
    _script(provider_emulators, question_audio)
    apology = prompts.line("outage_callback")
    if provider == "stt":  # the agent cannot hear from the start: the caller is told after the greeting
        for key in ("stt", "openai_stt"):
            provider_emulators.fault(key, "http_500", count=-1)
    caller, room = await _start_call(firebase_emulator, live_token_server, livekit_server, "Dee Down")
    try:
        if provider != "stt":
            for key in (provider, FALLBACK[provider]):
                provider_emulators.fault(key, "http_500", count=-1)
        # Unheard, a caller says it again: with speech to text down, each round over the providers
        # fails only when there is an utterance to transcribe.
        for attempt in range(3 if provider == "stt" else 1):
            spoken_until = _ask(caller, question_audio)
            try:
                await caller.wait_for(lambda: apology in caller.agent_finals(), 25.0, "the recorded apology")
                break
            except AssertionError:
                if attempt == (2 if provider == "stt" else 0):
                    raise
        first = _first_audio_after(caller, spoken_until)
        if provider != "stt" and first is not None:
            GAPS[f"all-{provider}-down (apology)"] = first - spoken_until
        heard_from = caller.transcripts[-1].at
        # The apology is real audio (about ten seconds of it), then the agent hangs up.
        await caller.wait_for(lambda: caller.heard_since(heard_from - 12) >= 100, 20.0, "the apology's audio")
        await caller.wait_for(
            lambda: not caller.room.isconnected() or caller.agent_state() is None,
            30.0,
            "the agent to end the call",
        )
    finally:
        await caller.close()

    row = await stored_call(database_url, room, ready=lambda r: r["ended_at"] is not None, within=40)
    assert row["degraded"] is True
    assert row["status"] == "failed" and row["end_reason"] == "provider_outage"
    turns = [(t["role"], t["content"]) for t in await stored_turns(database_url, row["id"])]
    assert ("assistant", apology) in turns
    if provider != "stt":
        assert ("user", QUESTION) in turns
        assert turns.index(("user", QUESTION)) < turns.index(("assistant", apology))
    kinds = {e["kind"]: e["detail"] for e in await stored_events(database_url, row["id"])}
    assert kinds["provider_outage"]["service"] == provider
    assert "callback_requested" in kinds
