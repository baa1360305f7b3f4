"""The provider emulators, driven by the REAL LiveKit plugins through ``base_url``.

No LiveKit server is involved: each test builds a plugin object pointed at the emulator
subprocess and checks what comes back (scripted text, tool calls, transcripts, real speech),
plus the control API's faults and latency.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import openai as openai_sdk
import pytest
from livekit import rtc
from livekit.agents import (
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
    function_tool,
    llm,
    stt,
)
from livekit.plugins import deepgram, elevenlabs, openai

from tests.support.provider_emulators import ProviderEmulators

NO_RETRY = APIConnectOptions(max_retry=0, timeout=10)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """Outside a job there is no ``http_context`` session, so the plugins get this one."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def llm_client(emulators: ProviderEmulators) -> AsyncIterator[openai.LLM]:
    client = openai.LLM(model="gpt-4o-mini", base_url=emulators.base_urls["openai"], api_key="emulator")
    yield client
    await client.aclose()


def user_ctx(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content="You are the voicedesk agent. The caller is Ada Lovelace.")
    ctx.add_message(role="user", content=text)
    return ctx


async def collect_text(stream: llm.LLMStream) -> str:
    parts = []
    async with stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                parts.append(chunk.delta.content)
    return "".join(parts)


# OpenAI ------------------------------------------------------------------------------------------


async def test_llm_streams_scripted_text_and_logs_prompt(
    emulators: ProviderEmulators, llm_client: openai.LLM
) -> None:
    emulators.script(llm=[{"text": "We are open nine to five."}])
    text = await collect_text(llm_client.chat(chat_ctx=user_ctx("What are your opening hours?")))
    assert text == "We are open nine to five."

    [request] = emulators.log("llm")
    assert request["stream"] is True and request["model"] == "gpt-4o-mini"
    assert "Ada Lovelace" in json.dumps(request["messages"])
    assert request["last_user"] == "What are your opening hours?"


async def test_llm_default_answer_echoes_last_user_message(llm_client: openai.LLM) -> None:
    text = await collect_text(llm_client.chat(chat_ctx=user_ctx("Is anybody there?")))
    assert text == "You said: Is anybody there."


async def test_llm_scripted_tool_call_arrives_as_function_call(
    emulators: ProviderEmulators, llm_client: openai.LLM
) -> None:
    @function_tool
    async def end_call(reason: str) -> None:
        """End the call.

        Args:
            reason: why the call ends
        """

    emulators.script(llm=[{"tool_calls": [{"name": "end_call", "arguments": {"reason": "caller said bye"}}]}])
    calls: list[llm.FunctionToolCall] = []
    async with llm_client.chat(chat_ctx=user_ctx("Bye!"), tools=[end_call]) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.tool_calls:
                calls.extend(chunk.delta.tool_calls)
    assert [c.name for c in calls] == ["end_call"]
    assert json.loads(calls[0].arguments) == {"reason": "caller said bye"}
    assert calls[0].call_id.startswith("call_")
    assert emulators.log("llm")[0]["tools"] == ["end_call"]


async def test_llm_when_pins_answer_to_question(emulators: ProviderEmulators, llm_client: openai.LLM) -> None:
    emulators.script(llm=[{"when": "refund", "text": "Refunds take five days."}, {"text": "Hi Ada."}])
    assert await collect_text(llm_client.chat(chat_ctx=user_ctx("Hello"))) == "Hi Ada."
    assert (
        await collect_text(llm_client.chat(chat_ctx=user_ctx("Where is my refund?")))
        == "Refunds take five days."
    )


async def test_llm_http_500_fault_raises_status_error(
    emulators: ProviderEmulators, llm_client: openai.LLM
) -> None:
    emulators.fault("llm", "http_500", count=1)
    with pytest.raises(APIStatusError) as exc_info:
        await collect_text(llm_client.chat(chat_ctx=user_ctx("Hello"), conn_options=NO_RETRY))
    assert exc_info.value.status_code == 500
    # count=1: the next request is healthy again
    assert await collect_text(llm_client.chat(chat_ctx=user_ctx("Hello"))) == "You said: Hello."


async def test_llm_disconnect_fault_breaks_the_stream(
    emulators: ProviderEmulators, llm_client: openai.LLM
) -> None:
    emulators.script(llm=["One two three four five six seven."])
    emulators.fault("llm", "disconnect")
    with pytest.raises(APIError):
        await collect_text(llm_client.chat(chat_ctx=user_ctx("Count"), conn_options=NO_RETRY))


async def test_llm_stall_fault_times_out(emulators: ProviderEmulators, llm_client: openai.LLM) -> None:
    emulators.fault("llm", "stall")
    started = time.perf_counter()
    with pytest.raises(APITimeoutError):
        await collect_text(
            llm_client.chat(
                chat_ctx=user_ctx("Hello"), conn_options=APIConnectOptions(max_retry=0, timeout=1)
            )
        )
    assert time.perf_counter() - started < 5


async def test_llm_latency_shows_in_time_to_first_token(
    emulators: ProviderEmulators, llm_client: openai.LLM
) -> None:
    async def ttft() -> float:
        started = time.perf_counter()
        async with llm_client.chat(chat_ctx=user_ctx("Hello")) as stream:
            async for chunk in stream:
                if chunk.delta and chunk.delta.content:
                    first = time.perf_counter() - started
                    break
            async for _ in stream:
                pass
        return first

    baseline = await ttft()
    emulators.set_latency("llm", first_ms=400)
    delayed = await ttft()
    assert baseline < 0.3
    assert 0.4 <= delayed < 1.5
    assert delayed - baseline > 0.3


async def test_embeddings_are_deterministic_and_similar_for_similar_texts(
    emulators: ProviderEmulators,
) -> None:
    client = openai_sdk.AsyncOpenAI(base_url=emulators.base_urls["openai"], api_key="emulator")
    texts = ["What are your opening hours?", "opening hours of the office", "How do I reset my password?"]
    resp = await client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=256)
    again = await client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    await client.close()
    vecs = np.array([d.embedding for d in resp.data])
    assert vecs.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert len(again.data[0].embedding) == 1536
    assert vecs[0] @ vecs[1] > 0.4 > vecs[0] @ vecs[2]


# Deepgram ------------------------------------------------------------------------------------------


def espeak_pcm(text: str, rate: int, tmp: Path) -> np.ndarray:
    wav_path = tmp / f"utt-{abs(hash((text, rate)))}.wav"
    raw = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", text], check=True, capture_output=True
    ).stdout
    subprocess.run(
        ["sox", "-q", "-t", "wav", "-", "-r", str(rate), "-c", "1", "-b", "16", str(wav_path)],
        input=raw,
        check=True,
    )
    with wave.open(str(wav_path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def push_pcm(stream: stt.SpeechStream, pcm: np.ndarray, rate: int) -> None:
    step = rate // 100  # 10 ms frames, as a LiveKit track delivers them
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        if len(chunk) < step:
            chunk = np.pad(chunk, (0, step - len(chunk)))
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), rate, 1, step))


async def next_final(stream: stt.SpeechStream, seen: list[stt.SpeechEventType]) -> str:
    async def wait() -> str:
        async for ev in stream:
            seen.append(ev.type)
            if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                return ev.alternatives[0].text
        raise AssertionError("stream ended without a final transcript")

    return await asyncio.wait_for(wait(), timeout=15)


@pytest.mark.parametrize("rate", [16000, 48000])
async def test_deepgram_stream_transcribes_utterances_in_script_order(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, tmp_path: Path, rate: int
) -> None:
    emulators.script(stt=["What are your opening hours?"], stt_default="hello")
    dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http_session)
    stream = dg.stream()
    silence = np.zeros(rate, dtype=np.int16)
    speech = espeak_pcm("What are your opening hours?", rate, tmp_path)
    push_pcm(stream, np.concatenate([silence[: rate // 4], speech, silence]), rate)

    seen: list[stt.SpeechEventType] = []
    assert await next_final(stream, seen) == "What are your opening hours?"
    assert stt.SpeechEventType.START_OF_SPEECH in seen
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in seen

    push_pcm(stream, np.concatenate([speech, silence]), rate)  # queue empty now: default text
    assert await next_final(stream, seen) == "hello"
    await stream.aclose()

    utterances = [e for e in emulators.log("stt") if e["event"] == "utterance"]
    assert [u["text"] for u in utterances] == ["What are your opening hours?", "hello"]
    duration = len(speech) / rate
    assert abs((utterances[0]["audio_end"] - utterances[0]["audio_start"]) - duration) < 0.5
    [connect] = [e for e in emulators.log("stt") if e["event"] == "connect"]
    assert connect["params"]["encoding"] == "linear16" and connect["params"]["sample_rate"] == "16000"


async def test_deepgram_flush_finalizes_without_trailing_silence(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    emulators.script(stt=["I need help with my invoice."])
    dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http_session)
    stream = dg.stream()
    push_pcm(stream, espeak_pcm("I need help with my invoice.", 16000, tmp_path), 16000)
    stream.flush()  # the plugin sends Finalize
    assert await next_final(stream, []) == "I need help with my invoice."
    await stream.aclose()
    [utt] = [e for e in emulators.log("stt") if e["event"] == "utterance"]
    assert utt["from_finalize"] is True


async def test_deepgram_disconnect_fault_reconnects_and_keeps_script_order(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    emulators.script(stt=["Please call me back."])
    emulators.fault("stt", "disconnect", count=1)
    dg = deepgram.STT(base_url=emulators.base_urls["deepgram"], api_key="emulator", http_session=http_session)
    stream = dg.stream()
    pcm = np.concatenate([np.zeros(4000, np.int16), espeak_pcm("Please call me back.", 16000, tmp_path)])

    async def feed_in_real_time() -> None:  # the drop must happen while audio still flows
        for i in range(0, len(pcm), 1600):
            push_pcm(stream, pcm[i : i + 1600], 16000)
            await asyncio.sleep(0.1)
        push_pcm(stream, np.zeros(16000, np.int16), 16000)

    feeder = asyncio.create_task(feed_in_real_time())
    assert await next_final(stream, []) == "Please call me back."
    await feeder
    await stream.aclose()
    events = [e["event"] for e in emulators.log("stt")]
    assert events[:3] == ["connect", "disconnect", "connect"]


# ElevenLabs ------------------------------------------------------------------------------------------

SENTENCE = "Thanks for calling voice desk. How can I help you today?"


def check_speech(frames: list[rtc.AudioFrame], text: str) -> None:
    assert frames, "no audio"
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).astype(np.float32) / 32768
    duration = len(pcm) / frames[0].sample_rate
    rms = float(np.sqrt(np.mean(pcm**2)))
    words = len(text.split())
    assert rms > 0.02, f"audio is (nearly) silent: rms={rms:.4f}"
    assert words / 5 < duration < words / 1.2, f"{duration:.2f}s of audio for {words} words"


def eleven(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, encoding: str = "pcm_16000"
) -> elevenlabs.TTS:
    """The real ElevenLabs plugin, pointed at the emulator."""
    return elevenlabs.TTS(
        base_url=emulators.base_urls["elevenlabs"],
        api_key="emulator",
        encoding=encoding,  # type: ignore[arg-type]
        http_session=http_session,
    )


async def stream_words(tts: elevenlabs.TTS, text: str) -> list[tuple[rtc.AudioFrame, float]]:
    """``text`` pushed word by word, as an LLM sends it; each frame with when it arrived."""
    got: list[tuple[rtc.AudioFrame, float]] = []
    async with tts.stream() as stream:
        for word in text.split():
            stream.push_text(word + " ")
        stream.end_input()
        async for ev in stream:
            got.append((ev.frame, time.perf_counter()))
    await tts.aclose()
    return got


@pytest.mark.parametrize("encoding", ["pcm_24000", "mp3_22050_32"])
async def test_elevenlabs_stream_yields_speech(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, encoding: str
) -> None:
    frames = [f for f, _ in await stream_words(eleven(emulators, http_session, encoding), SENTENCE)]
    assert frames[0].sample_rate == int(encoding.split("_")[1])
    check_speech(frames, SENTENCE)
    texts = [e["text"] for e in emulators.log("tts") if e["event"] == "synthesize"]
    assert " ".join(texts) == SENTENCE  # one generation per sentence (auto mode flushes)


@pytest.mark.parametrize("encoding", ["pcm_16000", "mp3_22050_32"])
async def test_elevenlabs_synthesize_yields_speech(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession, encoding: str
) -> None:
    tts = eleven(emulators, http_session, encoding)
    frames = [ev.frame async for ev in tts.synthesize(SENTENCE)]
    await tts.aclose()
    check_speech(frames, SENTENCE)
    [entry] = emulators.log("tts")
    assert entry["api"] == "http" and entry["text"] == SENTENCE and entry["output_format"] == encoding


async def test_elevenlabs_http_500_fault_raises(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession
) -> None:
    emulators.fault("tts", "http_500", count=-1)
    tts = elevenlabs.TTS(
        base_url=emulators.base_urls["elevenlabs"], api_key="emulator", http_session=http_session
    )
    with pytest.raises(APIStatusError):
        async for _ in tts.synthesize("Hello", conn_options=NO_RETRY):
            pass
    await tts.aclose()


async def test_elevenlabs_first_byte_latency_and_stall(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession
) -> None:
    tts = eleven(emulators, http_session)
    emulators.set_latency("tts", first_ms=300)
    started = time.perf_counter()
    async with tts.stream() as stream:
        stream.push_text("Hello there.")
        stream.end_input()
        first = None
        async for _ in stream:
            first = first or time.perf_counter() - started
    assert first is not None and 0.3 <= first < 1.5

    emulators.fault("tts", "stall")
    with pytest.raises(APIError):
        async with tts.stream(conn_options=APIConnectOptions(max_retry=0, timeout=1.5)) as stream:
            stream.push_text("Nobody will hear this.")
            stream.end_input()
            async for _ in stream:
                pass
    await tts.aclose()


async def test_elevenlabs_rate_paces_a_replys_sentences_back_to_back(
    emulators: ProviderEmulators, http_session: aiohttp.ClientSession
) -> None:
    """At a rate, a two-sentence reply arrives over its whole length: the second sentence is
    not sent in a burst once the first was paced out (a mid-reply cut is timed by this)."""
    emulators.set_latency("tts", rate=2)
    got = await stream_words(eleven(emulators, http_session), SENTENCE)
    frames, arrivals = [f for f, _ in got], [t for _, t in got]
    assert len([e for e in emulators.log("tts") if e["event"] == "synthesize"]) == 2
    paced = sum(f.duration for f in frames) / 2
    assert arrivals[-1] - arrivals[0] >= 0.8 * paced, f"{arrivals[-1] - arrivals[0]:.2f}s for {paced:.2f}s"
