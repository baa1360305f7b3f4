"""Keeps LiveKit's transcript synchroniser from blocking a call's event loop.

The synchroniser paces the agent's words to its voice, and on livekit-agents 1.8.9 two of its
steps ran on the call's loop just as the greeting should start (LiveKit's loop monitor named
them): the hyphenation patterns, built on their first use (about 0.3 s), and the speaking-rate
estimate, one FFT per 25 ms of audio in Python. A cached greeting arrives in one burst, so the
estimate for all of it ran at once: 0.1 s idle, 0.27 s under load, before the first frame of
the greeting was sent. Here the patterns are built in prewarm and the estimate is the same
spectral flux, computed in one vectorised pass per window.
"""

from __future__ import annotations

import numpy as np
from livekit.agents.tokenize import basic
from livekit.agents.voice.transcription._speaking_rate import SpeakingRateStream
from numpy.lib.stride_tricks import sliding_window_view


def spectral_flux(audio: np.ndarray, sample_rate: int) -> float:
    """Mean L1 change between consecutive 25 ms spectra (50% overlap, Hann window, scaled as
    LiveKit's own), so the synchroniser's pacing is unchanged."""
    frame_length = int(sample_rate * 0.025)
    hop_length = frame_length // 2
    if len(audio) < frame_length:
        return 0.0
    frames = sliding_window_view(audio, frame_length)[::hop_length]
    window = np.hanning(frame_length)
    magnitudes = np.abs(np.fft.rfft(frames * window, axis=1)) / np.sqrt(np.sum(window**2))
    if len(magnitudes) < 2:
        return 0.0
    return float(np.mean(np.sum(np.abs(np.diff(magnitudes, axis=0)), axis=1)))


def install() -> None:
    """Once per job process, before its call (prewarm)."""
    basic.hyphenate_word("voicedesk")  # builds and caches the patterns
    SpeakingRateStream._spectral_flux = lambda _self, audio, rate: spectral_flux(audio, rate)  # type: ignore[method-assign]
