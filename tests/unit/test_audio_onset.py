"""A live reply is played from its first word: the stillness before it is skipped, nothing after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, USERDATA_TTS_STARTED_TIME
from livekit.agents.voice.io import TimedString

from agent.audio_onset import MAX_SKIP_MS, ONSET_PAD_MS, without_leading_stillness

RATE = 24000


def _voice(ms: int) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return (np.sin(2 * np.pi * 200 * t) * 8000).astype(np.int16)


def _hiss(ms: int) -> np.ndarray:
    return np.random.default_rng(ms).integers(-40, 40, RATE * ms // 1000).astype(np.int16)


def _frames(pcm: np.ndarray, frame_ms: int) -> list[rtc.AudioFrame]:
    step = RATE * frame_ms // 1000
    return [
        rtc.AudioFrame(pcm[i : i + step].tobytes(), RATE, 1, len(pcm[i : i + step]))
        for i in range(0, len(pcm), step)
    ]


async def _played(frames: list[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    async def source() -> AsyncIterator[rtc.AudioFrame]:
        for f in frames:
            yield f

    return [f async for f in without_leading_stillness(source())]


def _pcm(frames: list[rtc.AudioFrame]) -> np.ndarray:
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


async def test_the_reply_starts_just_before_its_voice_with_every_word_timing() -> None:
    voice = _voice(500)
    frames = _frames(np.concatenate([_hiss(55), voice]), 20)  # the voice starts 15 ms into frame 3
    frames[0].userdata[USERDATA_TTS_STARTED_TIME] = 12.5
    frames[0].userdata[USERDATA_TIMED_TRANSCRIPT] = [TimedString("Hello ", start_time=0.0, end_time=0.2)]
    frames[2].userdata[USERDATA_TIMED_TRANSCRIPT] = [TimedString("there.", start_time=0.2, end_time=0.5)]
    played = await _played(frames)
    pcm = _pcm(played)
    pad = RATE * ONSET_PAD_MS // 1000
    assert len(pcm) == len(voice) + pad
    assert np.array_equal(pcm[pad:], voice)  # every sample of the voice, from its start
    first = played[0].userdata
    assert first[USERDATA_TTS_STARTED_TIME] == 12.5
    assert [str(t) for t in first[USERDATA_TIMED_TRANSCRIPT]] == ["Hello ", "there."]
    assert played[1:] == frames[3:]  # after the onset, frames pass as they came


async def test_a_reply_quiet_for_too_long_or_quiet_throughout_loses_nothing() -> None:
    late = np.concatenate([_hiss(MAX_SKIP_MS + 100), _voice(200)])
    assert np.array_equal(_pcm(await _played(_frames(late, 20))), late)
    quiet = _hiss(100)
    assert np.array_equal(_pcm(await _played(_frames(quiet, 20))), quiet)
    assert await _played([]) == []
