"""Build the speech pipeline's providers from settings.

Plugins are imported at module top level: LiveKit plugins must register on the main thread.
"""

from __future__ import annotations

import aiohttp
from livekit.agents import APIConnectOptions, inference
from livekit.plugins import deepgram, elevenlabs, openai, silero

from agent.realtime_model import RealtimeModel
from agent.settings import AgentSettings


def load_vad() -> silero.VAD:
    """Silero's ONNX model ships in the wheel: loading needs no network."""
    return silero.VAD.load()


def build_stt(settings: AgentSettings) -> deepgram.STT:
    kwargs = {"base_url": settings.deepgram_base_url} if settings.deepgram_base_url else {}
    return deepgram.STT(
        model=settings.stt_model,
        language=settings.stt_language,
        api_key=settings.deepgram_api_key.get_secret_value(),
        **kwargs,
    )


def build_llm(settings: AgentSettings) -> openai.LLM:
    kwargs = {"base_url": settings.openai_base_url} if settings.openai_base_url else {}
    return openai.LLM(model=settings.llm_model, api_key=settings.openai_api_key.get_secret_value(), **kwargs)


def build_tts(
    settings: AgentSettings, voice_id: str | None = None, http_session: aiohttp.ClientSession | None = None
) -> elevenlabs.TTS:
    """``voice_id`` is the caller's own choice from their settings, when they made one;
    ``http_session`` is for use outside a call (the greeting cache), where LiveKit has none."""
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
        model=settings.realtime_model,
        voice=settings.realtime_voice,
        modalities=["text"] if settings.elevenlabs_api_key else ["audio"],
        api_key=settings.openai_api_key.get_secret_value(),
        conn_options=REALTIME_CONNECT,
        **kwargs,
    )
