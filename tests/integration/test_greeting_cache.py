"""The greeting cache against the ElevenLabs emulator, through the real ElevenLabs plugin:
what is synthesised ahead of time, what a restart reads back, and what a provider fault leaves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np
import pytest

import prompts
from agent.greeting_cache import GreetingCache, cached_then_live, fixed_texts
from agent.providers import elevenlabs_tts
from agent.settings import AgentSettings
from tests.support.provider_emulators import ProviderEmulators

VOICES = ["EXAVITQu4vr4xnSDxMaL", "ErXwobaYiN019PkySvjV"]
DEFAULT_VOICE = "21m00Tcm4TlvDq8ikWAM"


def _settings(emulators: ProviderEmulators, cache_dir: Path, **extra: str) -> AgentSettings:
    """The worker's own settings, read from the environment the e2e worker gets."""
    env = {
        **emulators.env(),
        "LIVEKIT_URL": "ws://127.0.0.1:1",
        "LIVEKIT_API_KEY": "k",
        "LIVEKIT_API_SECRET": "s",
        "ELEVENLABS_VOICE_ID": DEFAULT_VOICE,
        "GREETING_CACHE_VOICES": ",".join(VOICES),
        "GREETING_CACHE_DIR": str(cache_dir),
        **extra,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return AgentSettings()


def _syntheses(emulators: ProviderEmulators) -> list[dict[str, object]]:
    return [e for e in emulators.log("tts") if e["event"] == "synthesize"]


def test_the_fixed_opening_comes_before_the_name() -> None:
    opening, anonymous = fixed_texts()[:2]
    assert prompts.greeting("Riley Tester").startswith(opening + " ")
    assert anonymous == prompts.greeting(None) == prompts.line("phone_greeting")


def test_prewarm_synthesises_every_voice_once_and_a_restart_reads_the_disk(
    provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    provider_emulators.reset()
    settings = _settings(provider_emulators, tmp_path)
    cache = GreetingCache(settings)
    cache.prewarm(within_s=30)
    texts = fixed_texts()
    assert cache.size == 3 * len(texts)
    assert sorted(e["text"] for e in _syntheses(provider_emulators)) == sorted(texts * 3)
    assert len(list(tmp_path.glob("*.wav"))) == 3 * len(texts)

    provider_emulators.reset()
    restarted = GreetingCache(settings)
    restarted.prewarm(within_s=30)
    assert restarted.size == 3 * len(texts)
    assert _syntheses(provider_emulators) == []  # nothing asked of the provider again

    # A known caller's greeting: the opening from the cache in their voice, their name live.
    hit = restarted.lookup(VOICES[0], prompts.greeting("Riley Tester"))
    assert hit is not None
    cached, rest = hit
    assert cached.text == texts[0] and rest == "How can I help you today, Riley?"
    samples = np.frombuffer(cached.pcm, dtype=np.int16)
    assert samples.size / cached.sample_rate > 1.0 and np.abs(samples).max() > 1000  # real speech
    # The impersonal greeting is cached whole; a voice nobody configured is not cached at all.
    assert restarted.lookup(None, prompts.greeting(None)) == (restarted.lookup(None, texts[1])[0], "")
    assert restarted.lookup("someone-else", prompts.greeting(None)) is None
    assert restarted.lookup(None, "Hi, thanks for calling Acme supportive people") is None  # word boundary
    assert restarted.lookup(None, prompts.greeting("Riley", template="Welcome back {name}!")) is None
    # Switched off, the files on disk are not used either.
    off = GreetingCache(_settings(provider_emulators, tmp_path, GREETING_CACHE_ENABLED="false"))
    assert off.lookup(None, prompts.greeting(None)) is None


def test_a_provider_fault_at_prewarm_leaves_live_synthesis(
    provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    provider_emulators.reset()
    provider_emulators.fault("tts", "http_500", count=-1)
    try:
        cache = GreetingCache(_settings(provider_emulators, tmp_path))
        cache.prewarm(within_s=30)  # does not raise: the worker starts anyway
    finally:
        provider_emulators.clear_fault("tts")
    assert cache.size == 0
    assert cache.lookup(None, prompts.greeting(None)) is None
    assert list(tmp_path.glob("*.wav")) == []


async def test_cached_audio_then_the_live_rest_in_one_stream(
    provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    provider_emulators.reset()
    settings = _settings(provider_emulators, tmp_path)
    cache = GreetingCache(settings, texts=fixed_texts()[:1])
    await asyncio.to_thread(cache.prewarm, 30)
    text = prompts.greeting("Riley Tester")
    hit = cache.lookup(None, text)
    assert hit is not None
    cached, rest = hit
    provider_emulators.reset()
    async with aiohttp.ClientSession() as http:  # outside a job LiveKit lends no HTTP session
        engine = elevenlabs_tts(settings, http_session=http)
        frames = [f async for f in cached_then_live(cached, rest, engine)]
        await engine.aclose()
    cached_s = len(cached.pcm) / 2 / cached.sample_rate
    total_s = sum(f.samples_per_channel / f.sample_rate for f in frames)
    assert total_s > cached_s + 0.5  # the rest was spoken after the cached opening
    assert [e["text"] for e in _syntheses(provider_emulators)] == [rest]
