"""Replay the caller's current utterance to the next speech-to-text provider after a switch.

LiveKit's ``stt.FallbackAdapter`` forwards only the audio that arrives after it moved to the
next provider: what the caller said to a provider that dropped or stalled mid-utterance is
lost, and the caller would have to repeat it. This adapter keeps the audio of the utterance
not yet finally transcribed (at most ``replay_seconds`` of it) and queues it again, ahead of
the live audio, whenever the adapter gives up on a provider, so the next one hears the
utterance from its start.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterable

from livekit import rtc
from livekit.agents import APIConnectOptions, stt
from livekit.agents.stt.fallback_adapter import DEFAULT_FALLBACK_API_CONNECT_OPTIONS, FallbackRecognizeStream
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils.aio.channel import ChanEmpty
from livekit.agents.vad import VAD


class ReplayingFallbackAdapter(stt.FallbackAdapter):
    """``stt.FallbackAdapter`` whose streams replay the utterance in progress on a switch."""

    def __init__(
        self,
        stt_list: list[stt.STT],
        *,
        replay_seconds: float,
        vad: VAD | None = None,
        attempt_timeout: float = 10.0,
        max_retry_per_stt: int = 1,
        retry_interval: float = 5,
    ) -> None:
        super().__init__(
            stt_list,
            vad=vad,
            attempt_timeout=attempt_timeout,
            max_retry_per_stt=max_retry_per_stt,
            retry_interval=retry_interval,
        )
        self.replay_seconds = replay_seconds

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_FALLBACK_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return ReplayingRecognizeStream(stt=self, language=language, conn_options=conn_options)


class ReplayingRecognizeStream(FallbackRecognizeStream):
    def __init__(
        self,
        *,
        stt: ReplayingFallbackAdapter,
        language: NotGivenOr[str],
        conn_options: APIConnectOptions,
    ) -> None:
        self._utterance = UtteranceBuffer(stt.replay_seconds)
        super().__init__(stt=stt, language=language, conn_options=conn_options)

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        super().push_frame(frame)
        self._utterance.add(frame)

    async def _metrics_monitor_task(self, event_aiter: AsyncIterable[stt.SpeechEvent]) -> None:
        # A final transcript closes the utterance: what it covers needs no replay.
        async for ev in event_aiter:
            if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT and any(a.text for a in ev.alternatives):
                self._utterance.clear()

    def _try_recovery(self, stt_instance: stt.STT) -> None:
        """Called synchronously when the adapter gave up on a provider (or skips one that is
        down), before it opens the next provider's stream: the queued frames reach that stream."""
        super()._try_recovery(stt_instance)
        self._requeue()

    def _requeue(self) -> None:
        frames = self._utterance.frames()
        if not frames or self._input_ch.closed:
            return
        # Frames still queued are in the buffer too: drop them so each is heard once, in order.
        flushes: list[object] = []
        with contextlib.suppress(ChanEmpty):
            while True:
                item = self._input_ch.recv_nowait()
                if not isinstance(item, rtc.AudioFrame):
                    flushes.append(item)
        for item in [*frames, *flushes]:
            self._input_ch.send_nowait(item)


class UtteranceBuffer:
    """The most recent ``seconds`` of audio since the last final transcript."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._frames: collections.deque[rtc.AudioFrame] = collections.deque()
        self._duration = 0.0

    def add(self, frame: rtc.AudioFrame) -> None:
        if self._seconds <= 0:
            return
        self._frames.append(frame)
        self._duration += frame.duration
        while self._duration > self._seconds and len(self._frames) > 1:
            self._duration -= self._frames.popleft().duration

    def clear(self) -> None:
        self._frames.clear()
        self._duration = 0.0

    def frames(self) -> list[rtc.AudioFrame]:
        return list(self._frames)

    @property
    def duration(self) -> float:
        return self._duration
