"""Notice a streaming speech-to-text provider that has gone quiet while the caller speaks.

A live STT socket that stays open but answers nothing raises no error, so the fallback adapter
would wait on it forever and the caller would go unheard. The guard wraps such a provider: when
voiced audio has gone unanswered (no event of any kind) for ``timeout`` seconds, its stream
fails with a timeout and ``stt.FallbackAdapter`` moves to the next provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, APITimeoutError, stt, utils
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

VOICED_RMS = 0.01  # full scale 1.0: quieter frames are silence or line noise


def _voiced(frame: rtc.AudioFrame) -> bool:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    return samples.size > 0 and float(np.sqrt(np.mean(samples * samples))) >= VOICED_RMS


class StallGuard(stt.STT):
    def __init__(self, inner: stt.STT, *, timeout: float) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._timeout = timeout
        inner.on("metrics_collected", lambda *args: self.emit("metrics_collected", *args))

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def provider(self) -> str:
        return self._inner.provider

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        return await self._inner.recognize(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _GuardedStream(self, language=language, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _GuardedStream(stt.RecognizeStream):
    def __init__(
        self, guard: StallGuard, *, language: NotGivenOr[str], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=guard, conn_options=conn_options, sample_rate=NOT_GIVEN)
        self._guard = guard
        self._language = language

    async def _run(self) -> None:
        guard = self._guard
        # The inner stream gets one attempt: retrying is the fallback adapter's business.
        inner = guard._inner.stream(
            language=self._language, conn_options=dataclasses.replace(self._conn_options, max_retry=0)
        )
        unanswered_since: float | None = None  # first voiced frame the provider has not answered

        async def forward() -> None:
            nonlocal unanswered_since
            async for data in self._input_ch:
                if isinstance(data, rtc.AudioFrame):
                    inner.push_frame(data)
                    if unanswered_since is None and _voiced(data):
                        unanswered_since = time.monotonic()
                else:
                    inner.flush()
            inner.end_input()

        async def read() -> None:
            nonlocal unanswered_since
            async for ev in inner:
                unanswered_since = None
                self._event_ch.send_nowait(ev)

        async def watch() -> None:
            while True:
                await asyncio.sleep(0.2)
                if unanswered_since is not None and time.monotonic() - unanswered_since > guard._timeout:
                    raise APITimeoutError(
                        f"{guard._inner.label} sent nothing for {guard._timeout}s while the caller spoke"
                    )

        async with inner:
            tasks = [asyncio.create_task(t) for t in (forward(), read(), watch())]
            try:
                done, _ = await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the watchdog's timeout, or the provider's own error
            finally:
                await utils.aio.cancel_and_wait(*tasks)
