"""The vectorised speaking rate gives LiveKit's own figures, so transcript pacing is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from livekit.agents.voice.transcription._speaking_rate import SpeakingRateStream

from agent.transcript_sync import spectral_flux

LIBRARY = SpeakingRateStream._spectral_flux
assert LIBRARY.__module__.startswith("livekit."), "compare against LiveKit's own, not ours"


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("seconds", [0.5, 0.73, 1.0])
def test_same_flux_as_livekit(rate: int, seconds: float) -> None:
    rng = np.random.default_rng(rate + int(seconds * 100))
    t = np.arange(int(rate * seconds)) / rate
    speechy = np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 4 * t)) * 0.2
    audio = (speechy + rng.standard_normal(t.size) * 0.05).astype(np.float32)
    stream = SpeakingRateStream.__new__(SpeakingRateStream)  # the method uses no state
    assert spectral_flux(audio, rate) == pytest.approx(LIBRARY(stream, audio, rate), rel=1e-9)
