"""Cached greeting audio starts at the voice, not at the stillness synthesis puts before it."""

from __future__ import annotations

import numpy as np

from agent.audio_onset import ONSET_PAD_MS
from agent.greeting_cache import CachedAudio

RATE = 24000


def _audio(quiet_ms: int, voice_ms: int = 500) -> CachedAudio:
    t = np.arange(RATE * voice_ms // 1000) / RATE
    voice = (np.sin(2 * np.pi * 200 * t) * 8000).astype(np.int16)
    hiss = np.random.default_rng(0).integers(-40, 40, RATE * quiet_ms // 1000).astype(np.int16)
    return CachedAudio("Hi.", np.concatenate([hiss, voice]).tobytes(), RATE)


def test_the_stillness_before_the_voice_is_skipped_but_a_short_pad() -> None:
    audio = _audio(quiet_ms=60)
    played = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in audio.frames()])
    assert len(played) == len(audio.pcm) // 2 - audio.onset
    assert audio.onset / RATE == (60 - ONSET_PAD_MS) / 1000
    voice = np.frombuffer(audio.pcm, dtype=np.int16)[RATE * 60 // 1000 :]
    assert np.array_equal(played[RATE * ONSET_PAD_MS // 1000 :], voice)  # all of it, from its start


def test_audio_that_starts_at_once_or_is_all_quiet_is_played_whole() -> None:
    assert _audio(quiet_ms=0).onset == 0
    assert _audio(quiet_ms=5).onset == 0  # less quiet than the pad
    assert CachedAudio("", np.zeros(RATE, dtype=np.int16).tobytes(), RATE).onset == 0
