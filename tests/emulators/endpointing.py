"""Energy-based endpointer for the STT emulator: finds where the caller starts and stops talking.

The emulator does not recognise words; it only needs to know *when* an utterance happens so
it can answer with the next scripted transcript at the right moment. Audio is judged in 10 ms
frames by RMS against a threshold; an utterance starts after ``min_speech_ms`` of voiced audio
and ends after ``silence_ms`` without any (espeak-ng pauses ~300 ms between sentences, hence
the 400 ms default in ``state.Latency``). Times are audio seconds since the stream began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

FRAME_MS = 10


@dataclass
class EndpointEvent:
    kind: Literal["start", "interim", "end"]
    start: float  # audio time the utterance began
    end: float  # audio time of the last voiced frame so far


def rms(pcm: bytes, channels: int = 1) -> float:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * channels)], dtype="<i2")
    if samples.size == 0:
        return 0.0
    mono = samples.reshape(-1, channels)[:, 0].astype(np.float32) / 32768.0
    return float(np.sqrt(np.mean(mono * mono)))


def voiced_span(pcm: bytes, sample_rate: int, channels: int = 1, threshold: float = 0.01) -> float:
    """Seconds from the first to the end of the last voiced 10 ms frame (0.0: none voiced)."""
    frame_bytes = sample_rate * FRAME_MS // 1000 * 2 * channels
    voiced = [
        i
        for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes)
        if rms(pcm[i : i + frame_bytes], channels) >= threshold
    ]
    if not voiced:
        return 0.0
    return (voiced[-1] - voiced[0] + frame_bytes) / frame_bytes * FRAME_MS / 1000


class EnergyEndpointer:
    def __init__(
        self,
        sample_rate: int,
        channels: int = 1,
        *,
        threshold: float = 0.01,
        silence_ms: float = 400,
        min_speech_ms: float = 100,
        interim_every_ms: float = 400,
    ) -> None:
        self.channels = channels
        self.threshold = threshold
        self.silence = silence_ms / 1000
        self.min_speech = min_speech_ms / 1000
        self.interim_every = interim_every_ms / 1000
        self.frame_bytes = sample_rate * FRAME_MS // 1000 * 2 * channels
        self.frame_s = FRAME_MS / 1000
        self._buf = b""
        self.time = 0.0  # audio seconds consumed
        self.in_speech = False
        self._candidate: float | None = None  # start of voiced audio not yet long enough
        self._voiced = 0.0
        self._start = 0.0
        self._last_voice_end = 0.0
        self._next_interim = 0.0

    def feed(self, pcm: bytes) -> list[EndpointEvent]:
        self._buf += pcm
        events: list[EndpointEvent] = []
        while len(self._buf) >= self.frame_bytes:
            frame, self._buf = self._buf[: self.frame_bytes], self._buf[self.frame_bytes :]
            voiced = rms(frame, self.channels) >= self.threshold
            frame_start, self.time = self.time, self.time + self.frame_s
            if voiced:
                self._last_voice_end = self.time
            if not self.in_speech:
                self._track_candidate(voiced, frame_start, events)
            elif voiced and self.time >= self._next_interim:
                self._next_interim = self.time + self.interim_every
                events.append(EndpointEvent("interim", self._start, self._last_voice_end))
            elif not voiced and self.time - self._last_voice_end >= self.silence:
                events.append(self.force_end())
        return events

    def _track_candidate(self, voiced: bool, frame_start: float, events: list[EndpointEvent]) -> None:
        if voiced:
            if self._candidate is None:
                self._candidate, self._voiced = frame_start, 0.0
            self._voiced += self.frame_s
            if self._voiced >= self.min_speech:
                self.in_speech = True
                self._start = self._candidate
                self._candidate = None
                self._next_interim = self.time + self.interim_every
                events.append(EndpointEvent("start", self._start, self._last_voice_end))
        elif self._candidate is not None and self.time - self._last_voice_end >= self.silence:
            self._candidate = None  # a click or a breath, not speech

    def force_end(self) -> EndpointEvent:
        """End the current utterance now (silence detected, Finalize or CloseStream)."""
        self.in_speech = False
        self._candidate = None
        return EndpointEvent("end", self._start, max(self._last_voice_end, self._start))
