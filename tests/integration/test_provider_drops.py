"""A provider dropping mid-utterance, with the worker's fallback adapters and the REAL plugins
against the provider emulators: the next STT hears the whole utterance (``agent/stt_replay``),
the next TTS speaks the rest of a reply (``agent/tts_resume``), the next LLM continues a reply
instead of repeating it (``agent/llm_continue``). Also the emulator features these need."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, APIError, llm, stt
from livekit.plugins import deepgram, elevenlabs, openai, silero

from agent.llm_continue import CONTINUE_INSTRUCTION, ContinuingFallbackAdapter
from agent.stt_replay import ReplayingFallbackAdapter
from agent.stt_stall_guard import StallGuard
from agent.tts_resume import ResumingFallbackAdapter
from tests.emulators.endpointing import voiced_span
from tests.integration.test_fallback_emulators import _speech
from tests.support.provider_emulators import ProviderEmulators

LINE = "Please call me back, I will be at home all afternoon."
STEP = 1600  # 0.1 s at 16 kHz


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def line_pcm() -> bytes:
    return bytes(_speech(LINE.replace(",", "").rstrip(".")).data)


# emulator: partial hearing, drop after N chunks -------------------------------------------------


async def test_openai_stt_transcribes_only_the_part_of_a_line_it_heard(
    emulators: ProviderEmulators, line_pcm: bytes
) -> None:
    emulators.script(stt_default=LINE, stt_lengths={LINE: voiced_span(line_pcm, 16000)})
    client = openai.STT(base_url=emulators.base_urls["openai"], api_key="emulator", use_realtime=False)
    opts = APIConnectOptions(max_retry=0, timeout=5)
    whole = await client.recognize(rtc.AudioFrame(line_pcm, 16000, 1, len(line_pcm) // 2), conn_options=opts)
    tail = line_pcm[len(line_pcm) // 2 :]
    part = await client.recognize(rtc.AudioFrame(tail, 16000, 1, len(tail) // 2), conn_options=opts)
    await client.aclose()
    assert whole.alternatives[0].text == LINE
    heard = part.alternatives[0].text
    assert heard and heard != LINE and LINE.endswith(heard), heard


def _elevenlabs(emulators: ProviderEmulators, http: aiohttp.ClientSession) -> elevenlabs.TTS:
    return elevenlabs.TTS(
        base_url=emulators.base_urls["elevenlabs"],
        api_key="emulator",
        encoding="pcm_24000",
        http_session=http,
    )  # type: ignore[arg-type]


async def test_elevenlabs_disconnect_after_n_chunks(
    emulators: ProviderEmulators, http: aiohttp.ClientSession
) -> None:
    el = _elevenlabs(emulators, http)
    emulators.fault("tts", "disconnect", after=6)
    audio = 0.0
    with pytest.raises(APIError):
        async with el.stream(conn_options=APIConnectOptions(max_retry=0, timeout=5)) as stream:
            stream.push_text(LINE)
            stream.end_input()
            async for ev in stream:
                audio += ev.frame.duration
    await el.aclose()
    assert 0.5 <= audio <= 0.7, audio  # six 0.1 s chunks, then the cut
    assert [e["event"] for e in emulators.log("tts")][-1] == "disconnect"


# speech to text ----------------------------------------------------------------------------------


async def _transcribe_with_fault(
    emulators: ProviderEmulators, http: aiohttp.ClientSession, pcm: bytes, kind: str, replay_seconds: float
) -> list[str]:
    """Speak ``pcm`` in real time to the worker's STT chain; Deepgram fails mid-utterance."""
    dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http)
    oa = openai.STT(base_url=emulators.base_urls["openai"], api_key="emulator", use_realtime=False)
    adapter = ReplayingFallbackAdapter(
        [StallGuard(dg, timeout=1.0), oa],
        replay_seconds=replay_seconds,
        vad=silero.VAD.load(),
        attempt_timeout=2.0,
        max_retry_per_stt=0,
        retry_interval=0.5,
    )
    stream = adapter.stream(conn_options=APIConnectOptions(max_retry=1, timeout=2.0, retry_interval=0.1))
    silence = rtc.AudioFrame(bytes(STEP * 2), 16000, 1, STEP)
    finals: list[str] = []

    async def feed() -> None:
        for _ in range(5):  # the socket is up before the fault is set
            stream.push_frame(silence)
            await asyncio.sleep(0.1)
        emulators.fault("stt", kind, count=-1)
        for i in range(0, len(pcm), STEP * 2):
            chunk = pcm[i : i + STEP * 2]
            stream.push_frame(rtc.AudioFrame(chunk, 16000, 1, len(chunk) // 2))
            await asyncio.sleep(0.1)
        for _ in range(30):
            stream.push_frame(silence)
            await asyncio.sleep(0.1)

    async def read() -> None:
        async for ev in stream:
            if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives[0].text:
                finals.append(ev.alternatives[0].text)
                return

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.wait_for(read(), 20)
    finally:
        feeder.cancel()
        await stream.aclose()
        await adapter.aclose()
    return finals


@pytest.mark.parametrize("kind", ["disconnect", "stall"])
async def test_next_stt_hears_the_whole_utterance(
    emulators: ProviderEmulators, http: aiohttp.ClientSession, line_pcm: bytes, kind: str
) -> None:
    emulators.script(stt_default=LINE, stt_lengths={LINE: voiced_span(line_pcm, 16000)})
    finals = await _transcribe_with_fault(emulators, http, line_pcm, kind, replay_seconds=15)
    assert finals == [LINE]
    events = [e["event"] for e in emulators.log("stt")]
    assert kind in events, events
    [heard] = [e for e in emulators.log("openai_stt") if e["text"]]
    assert heard["text"] == LINE


async def test_without_replay_the_next_stt_hears_only_the_rest(
    emulators: ProviderEmulators, http: aiohttp.ClientSession, line_pcm: bytes
) -> None:
    """What the replay fixes (and what the emulator makes visible): LiveKit's adapter alone."""
    emulators.script(stt_default=LINE, stt_lengths={LINE: voiced_span(line_pcm, 16000)})
    [final] = await _transcribe_with_fault(emulators, http, line_pcm, "disconnect", replay_seconds=0)
    assert final != LINE and LINE.endswith(final), final


# text to speech ----------------------------------------------------------------------------------

FIRST, SECOND = "Hello Fay.", "We are open from nine to five, Monday to Friday."


@pytest.mark.parametrize(("after", "rest"), [(1, f"{FIRST} {SECOND}"), (12, SECOND)])
async def test_next_tts_speaks_the_rest_of_a_cut_reply(
    emulators: ProviderEmulators, http: aiohttp.ClientSession, after: int, rest: str
) -> None:
    """ElevenLabs drops after ``after`` chunks (0.1 s each): the first sentence lasts about
    0.7 s, so 12 chunks cut the second (9 left 0.2 s, and under load it once resumed from the
    reply's start). OpenAI speaks from the sentence in progress on."""
    el = _elevenlabs(emulators, http)
    oa = openai.TTS(base_url=emulators.base_urls["openai"], api_key="emulator", response_format="pcm")
    adapter = ResumingFallbackAdapter([el, oa], max_retry_per_tts=0)
    emulators.fault("tts", "disconnect", after=after)
    frames: list[rtc.AudioFrame] = []
    async with adapter.stream(conn_options=APIConnectOptions(max_retry=0, timeout=5)) as stream:
        for word in f"{FIRST} {SECOND}".split():
            stream.push_text(word + " ")
        stream.end_input()
        async for ev in stream:
            frames.append(ev.frame)
    await adapter.aclose()
    spoken = [e["text"] for e in emulators.log("openai_tts") if e["event"] == "synthesize"]
    assert " ".join(spoken) == rest
    heard = sum(f.duration for f in frames)
    resumed = sum(e["duration"] for e in emulators.log("openai_tts") if e["event"] == "synthesize")
    assert heard >= resumed + after * 0.1 - 0.2, (heard, resumed)  # the cut part, then the rest
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).astype(np.float32)
    assert float(np.sqrt(np.mean((pcm / 32768) ** 2))) > 0.02


# LLM ---------------------------------------------------------------------------------------------

ANSWER = "We are open from nine to five, Monday to Friday."


async def test_fallback_llm_continues_a_cut_reply(emulators: ProviderEmulators) -> None:
    """The primary drops after two words; the fallback (the emulator answers the whole line
    again, like a model that starts over) is asked to continue: the words come once."""
    adapter = ContinuingFallbackAdapter(
        [
            openai.LLM(model="gpt-4o-mini", base_url=emulators.base_urls["openai"], api_key="emulator"),
            openai.LLM(model="gpt-4.1-mini", base_url=emulators.env()["LLM_FALLBACK_BASE_URL"], api_key="e"),
        ],
        attempt_timeout=2.0,
        max_retry_per_llm=0,
        retry_on_chunk_sent=True,
    )
    emulators.script(llm=[{"text": ANSWER, "when": "open"}] * 2)
    emulators.fault("llm", "disconnect", count=-1)
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content="When are you open?")
    text = ""
    async with adapter.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            text += chunk.delta.content if chunk.delta and chunk.delta.content else ""
    await adapter.aclose()
    assert text == ANSWER
    [asked] = [e for e in emulators.log("llm_fallback") if e["event"] == "request"]
    assert asked["messages"][-2] == {"role": "assistant", "content": "We are"}
    assert asked["messages"][-1]["content"] == CONTINUE_INSTRUCTION
