"""Build the speech pipeline's providers from settings.

Plugins are imported at module top level: LiveKit plugins must register on the main thread.
"""

from __future__ import annotations

import aiohttp
from livekit.agents import APIConnectOptions, inference, llm, stt, tts
from livekit.agents.vad import VAD
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import deepgram, elevenlabs, openai, silero

import prompts
from agent.llm_continue import ContinuingFallbackAdapter
from agent.realtime_model import RealtimeModel
from agent.settings import AgentSettings
from agent.stt_replay import ReplayingFallbackAdapter
from agent.stt_stall_guard import StallGuard
from agent.tts_resume import ResumingFallbackAdapter


def load_vad() -> silero.VAD:
    """Silero's ONNX model ships in the wheel: loading needs no network."""
    return silero.VAD.load()


def build_stt(settings: AgentSettings, vad: VAD) -> stt.STT:
    """STT_PROVIDERS in order. A provider that fails (or does not connect within
    STT_TIMEOUT_SECONDS) is skipped at once for the next: on a live call another provider is a
    better bet than a retry. OpenAI transcribes whole utterances, cut by ``vad``. The next
    provider hears the utterance in progress from its start (``agent/stt_replay.py``)."""
    builders = {"deepgram": _deepgram_stt, "openai": _openai_stt}
    providers = [builders[name](settings) for name in settings.stt_providers]
    # A live socket that goes quiet raises nothing: the guard turns silence into a timeout.
    providers = [
        StallGuard(p, timeout=settings.stt_timeout_seconds) if p.capabilities.streaming else p
        for p in providers
    ]
    return ReplayingFallbackAdapter(
        providers,
        replay_seconds=settings.stt_replay_seconds,
        vad=vad,
        attempt_timeout=settings.stt_timeout_seconds,
        max_retry_per_stt=0,
        retry_interval=settings.provider_retry_interval_seconds,
    )


def _openai_stt(settings: AgentSettings) -> openai.STT:
    return openai.STT(
        model=settings.openai_stt_model,
        language=settings.stt_language.split("-")[0],
        api_key=settings.openai_api_key.get_secret_value(),
        use_realtime=False,
        **({"base_url": settings.openai_base_url} if settings.openai_base_url else {}),
    )


def _deepgram_stt(settings: AgentSettings) -> deepgram.STT:
    kwargs = {"base_url": settings.deepgram_base_url} if settings.deepgram_base_url else {}
    return deepgram.STT(
        model=settings.stt_model,
        language=settings.stt_language,
        api_key=settings.deepgram_api_key.get_secret_value(),
        **kwargs,
    )


def build_llm(settings: AgentSettings) -> llm.LLM:
    """The LLM, then the LLM_FALLBACK_* endpoint. A stall of LLM_TIMEOUT_SECONDS (first token or
    mid-answer) counts as a failure; an answer cut off mid-way is continued by the next LLM
    (``retry_on_chunk_sent``, with the partial reply: ``agent/llm_continue.py``)."""
    kwargs = {"base_url": settings.openai_base_url} if settings.openai_base_url else {}
    primary = openai.LLM(
        model=settings.llm_model, api_key=settings.openai_api_key.get_secret_value(), **kwargs
    )
    if not settings.has_llm_fallback:
        return primary
    key = settings.llm_fallback_api_key or settings.openai_api_key
    base_url = settings.llm_fallback_base_url or settings.openai_base_url
    fallback = openai.LLM(
        model=settings.llm_fallback_model or settings.llm_model,
        api_key=key.get_secret_value(),
        **({"base_url": base_url} if base_url else {}),
    )
    return ContinuingFallbackAdapter(
        [primary, fallback],
        attempt_timeout=settings.llm_timeout_seconds,
        max_retry_per_llm=0,
        retry_interval=settings.provider_retry_interval_seconds,
        retry_on_chunk_sent=True,
    )


def build_tts(settings: AgentSettings, voice_id: str | None = None) -> tts.TTS | None:
    """TTS_PROVIDERS in order; one that sends no audio for TTS_TIMEOUT_SECONDS is skipped.

    ``voice_id`` is the caller's own (ElevenLabs) voice from their settings, when they made one.
    ElevenLabs is left out without a key (realtime mode may have none); None: no TTS at all.
    """
    builders = {
        "elevenlabs": lambda: elevenlabs_tts(settings, voice_id),
        "openai": lambda: _openai_tts(settings),
    }
    usable = [n for n in settings.tts_providers if n != "elevenlabs" or settings.elevenlabs_api_key]
    if not usable:
        return None
    # A reply cut off mid-way is finished by the next provider (agent/tts_resume.py).
    return ResumingFallbackAdapter([builders[name]() for name in usable], max_retry_per_tts=0)


def _openai_tts(settings: AgentSettings) -> openai.TTS:
    return openai.TTS(
        model=settings.openai_tts_model,
        voice=settings.openai_tts_voice,
        api_key=settings.openai_api_key.get_secret_value(),
        response_format="pcm",  # raw 24 kHz PCM: nothing to decode before the first frame
        **({"base_url": settings.openai_base_url} if settings.openai_base_url else {}),
    )


def elevenlabs_tts(
    settings: AgentSettings, voice_id: str | None = None, http_session: aiohttp.ClientSession | None = None
) -> elevenlabs.TTS:
    """``http_session`` is for use outside a call (the greeting cache), where LiveKit has none."""
    assert settings.elevenlabs_api_key is not None, "checked by AgentSettings"
    kwargs = {"base_url": settings.elevenlabs_base_url} if settings.elevenlabs_base_url else {}
    return elevenlabs.TTS(
        voice_id=voice_id or settings.elevenlabs_voice_id,
        model=settings.elevenlabs_model,
        api_key=settings.elevenlabs_api_key.get_secret_value(),
        voice_settings=elevenlabs.VoiceSettings(
            stability=settings.elevenlabs_stability,
            similarity_boost=settings.elevenlabs_similarity_boost,
            speed=settings.elevenlabs_speed,
        ),
        http_session=http_session,
        **kwargs,
    )


def build_connect_options(settings: AgentSettings) -> SessionConnectOptions:
    """Bounds for a live call. Each provider gets one attempt per round (the fallback adapters
    move on at once); after every provider of a kind failed, the whole list is tried again
    PROVIDER_MAX_RETRIES times before the session reports the kind as down."""

    def options(timeout: float) -> APIConnectOptions:
        return APIConnectOptions(
            max_retry=settings.provider_max_retries,
            retry_interval=settings.provider_retry_interval_seconds,
            timeout=timeout,
        )

    return SessionConnectOptions(
        stt_conn_options=options(settings.stt_timeout_seconds),
        llm_conn_options=options(settings.llm_timeout_seconds),
        tts_conn_options=options(settings.tts_timeout_seconds),
    )


def build_turn_detector() -> inference.TurnDetector:
    """The local `v1-mini` model from the livekit-local-inference wheel: works offline."""
    return inference.TurnDetector(version="v1-mini")


# A realtime handshake that takes over 3 s will not serve this caller: the call goes on in
# pipeline mode at the model's first error (agent/modes.py), and closing the realtime session
# ends its retries. The retries only keep the model's errors recoverable until then, since
# AgentSession closes on an unrecoverable one.
REALTIME_CONNECT = APIConnectOptions(max_retry=20, retry_interval=0.5, timeout=3.0)


def build_realtime(settings: AgentSettings) -> RealtimeModel:
    """Speech to speech, or text only when ElevenLabs speaks (the caller's chosen voice)."""
    kwargs = {"base_url": settings.openai_base_url} if settings.openai_base_url else {}
    return RealtimeModel(
        max_reply_words=settings.reply_max_words,
        reply_tail=prompts.line("reply_cut"),
        model=settings.realtime_model,
        voice=settings.realtime_voice,
        modalities=["text"] if settings.elevenlabs_api_key else ["audio"],
        api_key=settings.openai_api_key.get_secret_value(),
        conn_options=REALTIME_CONNECT,
        **kwargs,
    )
