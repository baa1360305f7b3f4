"""Provider fallback settings: ordered lists from ``a,b``, and clear errors naming the variable."""

from __future__ import annotations

import pytest

from agent.settings import AgentSettings
from voicedesk.config import SettingsError, load_settings

VALID = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "key",
    "LIVEKIT_API_SECRET": "secret",
    "OPENAI_API_KEY": "sk-test",
    "DEEPGRAM_API_KEY": "dg-test",
    "ELEVENLABS_API_KEY": "el-test",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in AgentSettings.model_fields:
        monkeypatch.delenv(key.upper(), raising=False)
    for key, value in VALID.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir("/")  # no .env from the checkout
    return monkeypatch


def test_defaults_fall_back_to_openai_and_have_no_second_llm(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(AgentSettings)
    assert settings.stt_providers == ["deepgram", "openai"]
    assert settings.tts_providers == ["elevenlabs", "openai"]
    assert not settings.has_llm_fallback


def test_lists_are_read_in_order_from_commas(env: pytest.MonkeyPatch) -> None:
    env.setenv("STT_PROVIDERS", " openai , deepgram")
    env.setenv("TTS_PROVIDERS", "openai")
    env.setenv("LLM_FALLBACK_MODEL", "gpt-4.1-mini")
    settings = load_settings(AgentSettings)
    assert settings.stt_providers == ["openai", "deepgram"]
    assert settings.tts_providers == ["openai"]
    assert settings.has_llm_fallback


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STT_PROVIDERS", "deepgram,whisper", "STT_PROVIDERS is invalid"),
        ("TTS_PROVIDERS", "elevenlabs,elevenlabs", "a provider is listed twice"),
        ("TTS_PROVIDERS", ",", "TTS_PROVIDERS is invalid"),
        ("LLM_TIMEOUT_SECONDS", "0", "LLM_TIMEOUT_SECONDS is invalid"),
        ("PROVIDER_MAX_RETRIES", "-1", "PROVIDER_MAX_RETRIES is invalid"),
        ("LLM_FALLBACK_BASE_URL", "ftp://x", "LLM_FALLBACK_BASE_URL is invalid"),
        ("LLM_FALLBACK_MODEL", "gpt-4o-mini", "name the primary LLM itself"),
    ],
)
def test_bad_values_are_named(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(SettingsError):
        load_settings(AgentSettings)
    assert message in capsys.readouterr().err
