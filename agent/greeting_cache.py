"""Greeting audio synthesised before any call, so a caller hears us at once.

A job process synthesises, for every voice a caller may have chosen, the greeting's fixed
opening (also the whole impersonal greeting and the recording notice) while it starts, and
keeps the PCM in memory and on disk, keyed by voice, model, voice settings and text: a
restarted worker reads it back instead of asking the TTS provider again. On a call, a greeting
that starts with a cached text plays that audio straight away, while the rest (the caller's
name) is synthesised live and follows in the same utterance: one transcript, one stored turn.
A provider fault or a slow provider at start-up only means live synthesis for the calls until
the cache is filled.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
import wave
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from livekit import rtc
from livekit.agents import tts as lk_tts

import prompts
from agent import providers
from agent.audio_onset import onset
from agent.settings import AgentSettings

logger = logging.getLogger("voicedesk.agent.greeting_cache")

FRAME_MS = 20  # what is handed to the audio output per step: pause and interruption stay prompt


@dataclass(frozen=True)
class CachedAudio:
    text: str
    pcm: bytes  # 16-bit mono
    sample_rate: int
    # Found when the entry is made (prewarm, a disk read), not as the greeting starts to play.
    onset: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "onset", onset(self.pcm, self.sample_rate))

    def frames(self) -> Iterable[rtc.AudioFrame]:
        step = self.sample_rate * FRAME_MS // 1000
        for start in range(self.onset, len(self.pcm) // 2, step):
            chunk = self.pcm[start * 2 : (start + step) * 2]
            yield rtc.AudioFrame(chunk, self.sample_rate, 1, len(chunk) // 2)


def fixed_texts() -> list[str]:
    """What every caller may hear first: the greeting's opening sentence(s) before the name,
    and the greeting without a name (a phone caller before the PIN, a caller we do not know)."""
    anonymous = prompts.greeting(None)
    named = prompts.greeting("Zq")  # a name no template contains
    shared = ""
    for sentence in re.findall(r"[^.!?]+[.!?]+\s*", anonymous):
        if not named.startswith(shared + sentence):
            break
        shared += sentence
    texts = [shared.strip(), anonymous, prompts.line("phone_greeting")]
    return list(dict.fromkeys(t for t in texts if t))


def cache_key(settings: AgentSettings, voice_id: str, text: str) -> str:
    """Audio depends on all of these: any change is a different entry."""
    spec = {
        "voice": voice_id,
        "model": settings.elevenlabs_model,
        "stability": settings.elevenlabs_stability,
        "similarity_boost": settings.elevenlabs_similarity_boost,
        "speed": settings.elevenlabs_speed,
        "text": text,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


class GreetingCache:
    def __init__(self, settings: AgentSettings, texts: Sequence[str] | None = None) -> None:
        self._settings = settings
        if texts is None:
            consent = settings.recording_consent_message if settings.recording_enabled else ""
            texts = [*fixed_texts(), *([consent] if consent.strip() else [])]
        self._texts = list(texts)
        self._voices = list(dict.fromkeys([settings.elevenlabs_voice_id, *settings.greeting_cache_voices]))
        self._dir = settings.greeting_cache_dir
        self._audio: dict[str, CachedAudio] = {}  # written by the filling thread, read by calls

    @property
    def size(self) -> int:
        return len(self._audio)

    def _path(self, key: str) -> Path | None:
        return self._dir / f"{key}.wav" if self._dir else None

    def load(self) -> None:
        """What an earlier process already synthesised: instant on a restart."""
        for voice in self._voices:
            for text in self._texts:
                self._read(cache_key(self._settings, voice, text), text)

    def _read(self, key: str, text: str) -> CachedAudio | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            with wave.open(str(path)) as wav:
                pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
        except (OSError, wave.Error, EOFError):
            logger.warning("unreadable cached greeting %s: synthesising it again", path)
            return None
        self._audio[key] = entry = CachedAudio(text, pcm, rate)
        return entry

    def missing(self) -> list[tuple[str, str]]:
        return [
            (voice, text)
            for voice in self._voices
            for text in self._texts
            if cache_key(self._settings, voice, text) not in self._audio
        ]

    async def fill(self) -> None:
        """Synthesise what is missing; a failure leaves that text to live synthesis."""
        todo = self.missing()
        if not todo:
            return
        async with aiohttp.ClientSession() as http:
            results = await asyncio.gather(
                *(self._synthesize(http, voice, text) for voice, text in todo), return_exceptions=True
            )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            logger.warning(
                "greeting cache: %d of %d syntheses failed (%s); those greetings use live TTS",
                len(failed),
                len(todo),
                type(failed[0]).__name__,
            )

    async def _synthesize(self, http: aiohttp.ClientSession, voice: str, text: str) -> None:
        engine = providers.elevenlabs_tts(self._settings, voice_id=voice, http_session=http)
        try:
            async with engine.synthesize(text) as stream:
                frames = [ev.frame async for ev in stream]
        finally:
            await engine.aclose()
        if not frames:
            raise RuntimeError("no audio")
        audio = rtc.combine_audio_frames(frames)
        if audio.num_channels != 1:
            raise RuntimeError(f"expected mono audio, got {audio.num_channels} channels")
        entry = CachedAudio(text, bytes(audio.data), audio.sample_rate)
        key = cache_key(self._settings, voice, text)
        self._audio[key] = entry
        if (path := self._path(key)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with wave.open(str(tmp), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(entry.sample_rate)
                wav.writeframes(entry.pcm)
            tmp.replace(path)  # a reader never sees half a file

    def prewarm(self, within_s: float) -> None:
        """From a job process's setup (synchronous): read the disk, then synthesise what is
        missing on a thread of its own, waiting at most ``within_s`` (0: not at all) so the
        process is ready for calls at once; what is not ready then fills in the background."""
        try:
            self.load()
        except OSError as exc:
            logger.warning("greeting cache directory unusable (%s): memory only", exc)
            self._dir = None
        if not self.missing():
            return
        thread = threading.Thread(target=self._fill_quietly, name="greeting-cache", daemon=True)
        thread.start()
        if within_s > 0:
            thread.join(within_s)

    def _fill_quietly(self) -> None:
        try:
            asyncio.run(self.fill())
        except Exception:  # a provider or disk fault must never stop the worker
            logger.exception("greeting cache synthesis failed; greetings use live TTS")

    def lookup(self, voice_id: str | None, text: str) -> tuple[CachedAudio, str] | None:
        """The longest cached start of ``text`` in this voice, and what is left to synthesise."""
        if not self._settings.greeting_cache_enabled:
            return None
        voice = voice_id or self._settings.elevenlabs_voice_id
        best: CachedAudio | None = None
        for cached in self._texts:
            if not text.startswith(cached) or (best is not None and len(cached) <= len(best.text)):
                continue
            rest = text[len(cached) :]
            if rest and not rest[0].isspace():
                continue  # not at a word boundary
            key = cache_key(self._settings, voice, cached)
            # on disk already when another process synthesised it after this one started
            entry = self._audio.get(key) or self._read(key, cached)
            if entry is not None:
                best = entry
        return (best, text[len(best.text) :].strip()) if best is not None else None


async def cached_then_live(
    cached: CachedAudio, rest: str, engine: lk_tts.TTS
) -> AsyncIterator[rtc.AudioFrame]:
    """The cached audio at once; the rest is synthesised meanwhile and follows it."""
    queue: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()

    async def synthesize_rest() -> None:
        try:
            if rest:
                async with engine.synthesize(rest) as stream:
                    async for ev in stream:
                        queue.put_nowait(ev.frame)
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(synthesize_rest(), name="greeting-rest")
    try:
        for frame in cached.frames():
            yield frame
        while (frame := await queue.get()) is not None:
            yield frame
        await task
    except Exception:  # the caller heard the opening; the rest is lost, not the call
        logger.exception("live synthesis of the greeting's rest failed")
    finally:
        task.cancel()


def greeting_audio(
    cache: GreetingCache, voice_id: str | None, text: str, engine: lk_tts.TTS | None
) -> AsyncIterator[rtc.AudioFrame] | None:
    """Audio for ``session.say(text, audio=...)``, or None: then the session's TTS speaks it."""
    hit = cache.lookup(voice_id, text)
    if hit is None or engine is None:
        return None
    cached, rest = hit
    return cached_then_live(cached, rest, engine)
