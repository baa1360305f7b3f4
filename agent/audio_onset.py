"""Where synthesised speech starts.

TTS audio opens with 40-60 ms of stillness before the first word (espeak-ng and ElevenLabs
alike). Played as it is, it only delays the moment the caller hears the agent: the cached
greeting skips it, and so does every live reply (`without_leading_stillness`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

QUIET_RMS = 100  # int16, about -50 dBFS: the stillness synthesised speech starts with
ONSET_PAD_MS = 10  # kept before the voice, so its first sound is not clipped
MAX_SKIP_MS = 300  # a reply still quiet after this long is played as it is: nothing is lost
_WINDOW_MS = 5


def first_loud(pcm: bytes, sample_rate: int) -> int | None:
    """The first sample of the first 5 ms window above ``QUIET_RMS``; None if all is quiet."""
    window = max(1, sample_rate * _WINDOW_MS // 1000)
    samples = np.frombuffer(pcm, dtype=np.int16)
    usable = samples[: len(samples) // window * window]
    rms = np.sqrt(np.mean(usable.reshape(-1, window).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > QUIET_RMS)
    if loud.size:
        return int(loud[0]) * window
    tail = samples[len(usable) :]  # the last, shorter window
    if tail.size and np.sqrt(np.mean(tail.astype(np.float64) ** 2)) > QUIET_RMS:
        return len(usable)
    return None


def onset(pcm: bytes, sample_rate: int) -> int:
    """The first sample to play: the voice's start less a short pad (0 if all is quiet)."""
    loud = first_loud(pcm, sample_rate)
    return 0 if loud is None else max(0, loud - sample_rate * ONSET_PAD_MS // 1000)


async def without_leading_stillness(frames: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
    """``frames`` from the voice's onset on. The skipped frames' word timings ride on the first
    frame played, so the transcript stays in step with the audio."""
    held: list[rtc.AudioFrame] = []
    started = False
    async for frame in frames:
        if started:
            yield frame
            continue
        held.append(frame)
        loud = first_loud(bytes(frame.data), frame.sample_rate)
        held_ms = sum(f.duration for f in held) * 1000
        if loud is None and held_ms < MAX_SKIP_MS:
            continue
        started = True
        yield _from_onset(held, loud)
    if held and not started:  # a reply of stillness only: played as it came
        yield _from_onset(held, None)


def _from_onset(held: list[rtc.AudioFrame], loud_in_last: int | None) -> rtc.AudioFrame:
    """The held frames as one, from ``ONSET_PAD_MS`` before the voice found in the last of them
    (``None``: from the start)."""
    combined = held[0] if len(held) == 1 else rtc.combine_audio_frames(held)
    start = 0
    if loud_in_last is not None:
        before = combined.samples_per_channel - held[-1].samples_per_channel
        start = max(0, before + loud_in_last - combined.sample_rate * ONSET_PAD_MS // 1000)
    channels = combined.num_channels
    data = np.frombuffer(combined.data, dtype=np.int16)[start * channels :]
    frame = rtc.AudioFrame(data.tobytes(), combined.sample_rate, channels, len(data) // channels)
    frame.userdata.update(_merged_userdata(held))
    return frame


def _merged_userdata(frames: list[rtc.AudioFrame]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for f in frames:
        for key, value in f.userdata.items():
            if key == USERDATA_TIMED_TRANSCRIPT:
                merged.setdefault(key, []).extend(value)
            else:
                merged.setdefault(key, value)  # e.g. when synthesis started: the first frame's
    return merged
