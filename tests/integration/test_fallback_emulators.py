"""The fallback providers' emulators, driven by the REAL LiveKit plugins: OpenAI STT
(``/v1/audio/transcriptions``), OpenAI TTS (``/v1/audio/speech``) and the second
OpenAI-compatible LLM (``/fallback/v1``), each with its own fault key."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, APIError, APIStatusError, APITimeoutError, llm
from livekit.agents import stt as agents_stt
from livekit.plugins import deepgram, openai

from agent.stt_stall_guard import StallGuard
from tests.support.provider_emulators import ProviderEmulators

NO_RETRY = APIConnectOptions(max_retry=0, timeout=5)
SENTENCE = "Your refund was sent this morning and should arrive within five days."


def _speech(text: str, rate: int = 16000) -> rtc.AudioFrame:
    raw = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True
    ).stdout
    pcm = subprocess.run(
        [
            "sox",
            "-q",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-r",
            str(rate),
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ],
        input=raw,
        check=True,
        capture_output=True,
    ).stdout
    return rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)


def _check_speech(frames: list[rtc.AudioFrame], text: str) -> None:
    assert frames, "no audio"
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).astype(np.float32) / 32768
    duration = len(pcm) / frames[0].sample_rate
    words = len(text.split())
    assert float(np.sqrt(np.mean(pcm**2))) > 0.02, "audio is (nearly) silent"
    assert words / 5 < duration < words / 1.2, f"{duration:.2f}s of audio for {words} words"


# speech to text -----------------------------------------------------------------------------------


@pytest.fixture
async def openai_stt(emulators: ProviderEmulators) -> AsyncIterator[openai.STT]:
    client = openai.STT(base_url=emulators.base_urls["openai"], api_key="emulator", use_realtime=False)
    yield client
    await client.aclose()


async def test_openai_stt_transcribes_an_utterance_from_the_script(
    emulators: ProviderEmulators, openai_stt: openai.STT
) -> None:
    emulators.script(stt=["I would like a refund, please."])
    event = await openai_stt.recognize(_speech("I would like a refund please"), conn_options=NO_RETRY)
    assert event.alternatives[0].text == "I would like a refund, please."
    [entry] = emulators.log("openai_stt")
    assert entry["model"] == "gpt-4o-mini-transcribe" and entry["language"] == "en"
    assert 1.0 < entry["duration"] < 4.0


async def test_openai_stt_silence_is_an_empty_transcript(
    emulators: ProviderEmulators, openai_stt: openai.STT
) -> None:
    emulators.script(stt=["never said"])
    silence = rtc.AudioFrame(bytes(32000), 16000, 1, 16000)
    event = await openai_stt.recognize(silence, conn_options=NO_RETRY)
    assert event.alternatives[0].text == ""
    assert emulators.log("openai_stt")[0]["text"] == ""


async def test_openai_stt_fault_keeps_the_transcript_for_the_retry(
    emulators: ProviderEmulators, openai_stt: openai.STT
) -> None:
    emulators.script(stt=["Cancel my order."])
    emulators.fault("openai_stt", "http_500")
    emulators.fault("stt", "http_500", count=-1)  # another provider's fault does not apply here
    with pytest.raises(APIStatusError) as failed:
        await openai_stt.recognize(_speech("Cancel my order"), conn_options=NO_RETRY)
    assert failed.value.status_code == 500
    event = await openai_stt.recognize(_speech("Cancel my order"), conn_options=NO_RETRY)
    assert event.alternatives[0].text == "Cancel my order."


# text to speech -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "response_format"), [("gpt-4o-mini-tts", "pcm"), ("tts-1", "mp3")])
async def test_openai_tts_streams_speech(
    emulators: ProviderEmulators, model: str, response_format: str
) -> None:
    tts = openai.TTS(
        base_url=emulators.base_urls["openai"],
        api_key="emulator",
        model=model,
        response_format=response_format,
    )
    started = time.perf_counter()
    frames = [ev.frame async for ev in tts.synthesize(SENTENCE, conn_options=NO_RETRY)]
    await tts.aclose()
    assert time.perf_counter() - started < 10
    assert frames[0].sample_rate == 24000
    _check_speech(frames, SENTENCE)
    [entry] = emulators.log("openai_tts")
    assert entry["text"] == SENTENCE and entry["response_format"] == response_format
    # The plugin asks the gpt-4o models for server-sent events and tts-1 for the bytes.
    assert entry["stream_format"] == ("sse" if model == "gpt-4o-mini-tts" else "audio")


@pytest.mark.parametrize("kind", ["http_500", "disconnect"])
async def test_openai_tts_faults_raise(emulators: ProviderEmulators, kind: str) -> None:
    tts = openai.TTS(base_url=emulators.base_urls["openai"], api_key="emulator", response_format="pcm")
    emulators.fault("openai_tts", kind)
    with pytest.raises(APIError):
        async for _ in tts.synthesize(SENTENCE, conn_options=NO_RETRY):
            pass
    frames = [ev.frame async for ev in tts.synthesize("Hello again.", conn_options=NO_RETRY)]
    await tts.aclose()
    _check_speech(frames, "Hello again.")


# the second LLM endpoint --------------------------------------------------------------------------


def _ctx(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content=text)
    return ctx


async def _text(stream: llm.LLMStream) -> str:
    async with stream:
        return "".join([c.delta.content async for c in stream if c.delta and c.delta.content])


async def test_fallback_llm_endpoint_has_its_own_faults(emulators: ProviderEmulators) -> None:
    fallback_url = emulators.env()["LLM_FALLBACK_BASE_URL"]
    primary = openai.LLM(model="gpt-4o-mini", base_url=emulators.base_urls["openai"], api_key="emulator")
    fallback = openai.LLM(model="gpt-4.1-mini", base_url=fallback_url, api_key="emulator")
    emulators.script(llm=[{"text": "Refunds take five days.", "when": "refund"}])
    emulators.fault("llm", "http_500", count=-1)
    # The faulted primary leaves the scripted answer for the fallback endpoint.
    with pytest.raises(APIStatusError):
        await _text(primary.chat(chat_ctx=_ctx("Where is my refund?"), conn_options=NO_RETRY))
    assert await _text(fallback.chat(chat_ctx=_ctx("Where is my refund?"))) == "Refunds take five days."
    [request] = emulators.log("llm_fallback")
    assert request["model"] == "gpt-4.1-mini" and request["last_user"] == "Where is my refund?"

    emulators.clear_fault("llm")
    emulators.fault("llm_fallback", "http_500")
    with pytest.raises(APIStatusError):
        await _text(fallback.chat(chat_ctx=_ctx("Hi"), conn_options=NO_RETRY))
    assert await _text(primary.chat(chat_ctx=_ctx("Hi"))) == "You said: Hi."
    await primary.aclose()
    await fallback.aclose()


async def test_llm_fallback_adapter_answers_through_the_second_endpoint(emulators: ProviderEmulators) -> None:
    """What the worker builds: a stalled primary is abandoned after attempt_timeout."""
    adapter = llm.FallbackAdapter(
        [
            openai.LLM(model="gpt-4o-mini", base_url=emulators.base_urls["openai"], api_key="emulator"),
            openai.LLM(model="gpt-4.1-mini", base_url=emulators.env()["LLM_FALLBACK_BASE_URL"], api_key="e"),
        ],
        attempt_timeout=1.0,
    )
    emulators.script(llm=[{"text": "We open at nine.", "when": "open"}])
    # An outage, not one bad request: the adapter's recovery probe of the primary stalls too
    # (a healthy probe would answer, and take the scripted answer, before the fallback).
    emulators.fault("llm", "stall", count=-1)
    started = time.perf_counter()
    assert await _text(adapter.chat(chat_ctx=_ctx("When do you open?"))) == "We open at nine."
    assert 1.0 <= time.perf_counter() - started < 4.0
    await adapter.aclose()


# Deepgram faults on a live socket ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["disconnect", "stall"])
async def test_deepgram_fault_set_on_a_live_socket_strikes_mid_utterance(
    emulators: ProviderEmulators, kind: str
) -> None:
    """What the fault tests need: a fault set mid-call hits the next utterance, not the handshake."""
    emulators.script(stt=["Please call me back."])
    async with aiohttp.ClientSession() as http:
        dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http)
        stream = dg.stream(conn_options=NO_RETRY)
        speech = _speech("Please call me back")
        step = 160
        silence = rtc.AudioFrame(bytes(step * 2), 16000, 1, step)
        for _ in range(50):  # half a second of silence: the socket is up
            stream.push_frame(silence)
        await asyncio.sleep(0.5)
        emulators.fault("stt", kind)
        pcm = bytes(speech.data)

        async def feed() -> None:
            for i in range(0, len(pcm), step * 2 * 10):
                stream.push_frame(
                    rtc.AudioFrame(pcm[i : i + step * 20], 16000, 1, len(pcm[i : i + step * 20]) // 2)
                )
                await asyncio.sleep(0.1)
            for _ in range(100):
                stream.push_frame(silence)

        feeder = asyncio.create_task(feed())
        finals: list[str] = []

        async def read() -> None:
            async for ev in stream:
                if ev.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(ev.alternatives[0].text)

        reader = asyncio.create_task(read())
        await asyncio.wait([reader], timeout=6)
        feeder.cancel()
        reader.cancel()
        await stream.aclose()
    log = emulators.log("stt")
    assert [e["event"] for e in log][:2] == ["connect", kind], log
    assert finals == []  # the utterance never came back on the faulted socket
    # ... and its transcript went back to the script for whoever transcribes next.
    async with httpx.AsyncClient(base_url=emulators.url, timeout=5) as client:
        for _ in range(20):
            state = (await client.get("/_emulator/state")).json()
            if state["stt_script"]:
                break
            await asyncio.sleep(0.25)
    assert state["stt_script"] == ["Please call me back."]


async def test_stall_guard_turns_a_quiet_socket_into_a_timeout(emulators: ProviderEmulators) -> None:
    """The worker wraps Deepgram in StallGuard: a socket that answers nothing while the caller
    speaks fails within the timeout, so the fallback adapter can move on."""
    emulators.script(stt=["Please call me back."])
    async with aiohttp.ClientSession() as http:
        dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http)
        stream = StallGuard(dg, timeout=1.0).stream(conn_options=NO_RETRY)
        emulators.fault("stt", "stall")
        pcm = bytes(_speech("Please call me back, I will be at home all afternoon").data)

        async def feed() -> None:
            for i in range(0, len(pcm), 3200):
                stream.push_frame(rtc.AudioFrame(pcm[i : i + 3200], 16000, 1, len(pcm[i : i + 3200]) // 2))
                await asyncio.sleep(0.1)

        feeder = asyncio.create_task(feed())
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            async for _ in stream:
                pass
        assert time.perf_counter() - started < 4.0
        feeder.cancel()
        await stream.aclose()
    assert [e["event"] for e in emulators.log("stt")][:2] == ["connect", "stall"]
