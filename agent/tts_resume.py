"""Let the next text-to-speech provider finish a reply the failing one had started to speak.

LiveKit's ``tts.FallbackAdapter`` gives up on a reply once any of its audio was played: a
provider that drops mid-reply leaves the caller with half an answer. This adapter instead
hands the next provider the text not yet spoken, from the start of the sentence in progress:
the failing provider's word timings (ElevenLabs' alignment) tell how far it got, so at most
that sentence is heard twice. A provider without word timings (none were received) is
resumed from the start of the reply; with no provider left, the rest is dropped as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from livekit.agents import APIConnectOptions, tts
from livekit.agents.tts.fallback_adapter import DEFAULT_FALLBACK_API_CONNECT_OPTIONS, FallbackSynthesizeStream
from livekit.agents.tts.tts import AudioEmitter, SynthesizedAudio
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT
from livekit.agents.utils import aio

logger = logging.getLogger("voicedesk.agent.tts_resume")

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+")


def unspoken_rest(text: str, spoken_words: int) -> str:
    """``text`` from the start of the sentence holding word number ``spoken_words`` (0-based:
    the first word not yet fully spoken); '' when every word was spoken."""
    words = list(re.finditer(r"\S+", text))
    if spoken_words >= len(words):
        return ""
    cut = words[spoken_words].start()
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if end.end() <= cut:
            start = end.end()
    return text[start:]


class ResumingFallbackAdapter(tts.FallbackAdapter):
    """``tts.FallbackAdapter`` whose streams resume a cut reply on the next provider."""

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_FALLBACK_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return ResumingSynthesizeStream(tts=self, conn_options=conn_options)


class ResumingSynthesizeStream(FallbackSynthesizeStream):
    def __init__(self, *, tts: ResumingFallbackAdapter, conn_options: APIConnectOptions) -> None:
        self._resume = False  # the attempt that just failed had been heard, and has a rest
        super().__init__(tts=tts, conn_options=conn_options)

    async def _run(self, output_emitter: AudioEmitter) -> None:
        await super()._run(_ResumableEmitter(output_emitter, self))  # type: ignore[arg-type]

    async def _try_synthesize(
        self,
        *,
        tts: tts.TTS,
        input_ch: aio.ChanReceiver[str | Any],
        conn_options: APIConnectOptions,
        recovering: bool = False,
    ) -> AsyncGenerator[SynthesizedAudio, None]:
        self._resume = False
        heard = 0.0  # seconds of this provider's audio passed on
        spoken = ""  # the text of the word timings received with the audio
        try:
            async for audio in super()._try_synthesize(
                tts=tts, input_ch=input_ch, conn_options=conn_options, recovering=recovering
            ):
                heard += audio.frame.duration
                for timed in audio.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT) or []:
                    spoken += str(timed)
                yield audio
        except Exception:
            if heard and not recovering and self._next_available(tts):
                text = "".join(self._pushed_tokens)
                timed = len(spoken.split())
                rest = unspoken_rest(text, timed)
                logger.info(
                    "%s failed after %.2f s of audio and %d of %d words timed; the next TTS says the last %d",
                    tts.label,
                    heard,
                    timed,
                    len(text.split()),
                    len(rest.split()),
                )
                if rest.strip():
                    # The next provider is fed from _pushed_tokens: only the rest, and whatever
                    # the LLM still sends (appended by the adapter's input task).
                    self._pushed_tokens[:] = [rest]
                    self._resume = True
            raise

    def _next_available(self, failed: tts.TTS) -> bool:
        """With no provider left to try, the adapter would raise after the caller heard part
        of the reply: keep LiveKit's ending (the rest is dropped) instead."""
        adapter = self._fallback_adapter
        later = adapter._status[adapter._tts_instances.index(failed) + 1 :]
        return any(status.available for status in later)


class _ResumableEmitter:
    """The adapter stops at a failure once audio was pushed; report none while a rest is to be
    spoken, so it moves on to the next provider."""

    def __init__(self, inner: AudioEmitter, stream: ResumingSynthesizeStream) -> None:
        self._inner = inner
        self._stream = stream

    def pushed_duration(self, idx: int = -1) -> float:
        if self._stream._resume:
            return 0.0
        return self._inner.pushed_duration(idx)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
