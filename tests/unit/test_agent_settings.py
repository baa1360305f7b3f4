"""The worker refuses to start on a missing or malformed setting, naming the variable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from agent.caller import Caller
from agent.settings import AgentSettings
from agent.voice_agent import NOT_FOUND, VoiceDeskAgent
from tests.support.processes import REPO_ROOT
from voicedesk.config import SettingsError, load_settings

VALID = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "key",
    "LIVEKIT_API_SECRET": "secret",
    "OPENAI_API_KEY": "sk-test",
    "DEEPGRAM_API_KEY": "dg-test",
    "ELEVENLABS_API_KEY": "el-test",
}


def _run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in AgentSettings.model_fields
        and not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "ELEVEN"))
    }
    return subprocess.run(
        [sys.executable, "-m", "agent", "start"],
        env={**clean, "DATABASE_URL": "postgresql://unused/db", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_stops_on_a_malformed_setting_and_names_it() -> None:
    result = _run_worker({**VALID, "ELEVENLABS_STABILITY": "very"})
    assert result.returncode == 2
    assert "ELEVENLABS_STABILITY is invalid" in result.stderr
    assert "example: ELEVENLABS_STABILITY=0.5" in result.stderr
    assert "registered worker" not in result.stdout + result.stderr


def test_worker_stops_on_a_missing_key_and_names_it() -> None:
    env = {k: v for k, v in VALID.items() if k != "DEEPGRAM_API_KEY"}
    result = _run_worker(env)
    assert result.returncode == 2
    assert "DEEPGRAM_API_KEY is not set" in result.stderr
    assert "what it is for: Deepgram API key" in result.stderr


def test_either_elevenlabs_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in VALID.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ELEVENLABS_API_KEY")
    monkeypatch.setenv("ELEVEN_API_KEY", "from-plugin-name")
    assert (
        load_settings(AgentSettings, _env_file=None).elevenlabs_api_key.get_secret_value()
        == "from-plugin-name"
    )
    monkeypatch.delenv("ELEVEN_API_KEY")
    with pytest.raises(SettingsError):
        load_settings(AgentSettings, _env_file=None)


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in VALID.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(AgentSettings, _env_file=None)
    assert "sk-test" not in repr(settings) and "el-test" not in str(settings)


def test_pipeline_mode_needs_a_voice_and_realtime_mode_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ELEVENLABS_API_KEY", "ELEVEN_API_KEY", "AGENT_MODE"):
        monkeypatch.delenv(key, raising=False)
    without_voice = {k: v for k, v in VALID.items() if k != "ELEVENLABS_API_KEY"}
    for key, value in without_voice.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError):
        load_settings(AgentSettings, _env_file=None)
    monkeypatch.setenv("AGENT_MODE", "realtime")
    settings = load_settings(AgentSettings, _env_file=None)
    assert settings.agent_mode == "realtime" and settings.elevenlabs_api_key is None
    monkeypatch.setenv("AGENT_MODE", "speech")
    with pytest.raises(SettingsError):
        load_settings(AgentSettings, _env_file=None)


def test_a_missing_pipeline_voice_is_named(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    for key in ("ELEVENLABS_API_KEY", "ELEVEN_API_KEY", "AGENT_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in VALID.items():
        if key != "ELEVENLABS_API_KEY":
            monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError):
        load_settings(AgentSettings, _env_file=None)
    err = capsys.readouterr().err
    assert "ELEVENLABS_API_KEY or ELEVEN_API_KEY is invalid" in err and "AGENT_MODE=pipeline" in err


# FEATURES_OFF: the benchmarks' baseline, refused outside dev and test --------------------------


def test_features_off_stops_a_production_worker_and_names_it() -> None:
    result = _run_worker({**VALID, "APP_ENV": "production", "FEATURES_OFF": "call_record,retrieval"})
    assert result.returncode == 2
    assert "FEATURES_OFF is invalid" in result.stderr
    assert "APP_ENV=production" in result.stderr and "dev or test" in result.stderr
    assert "Traceback" not in result.stderr
    assert "registered worker" not in result.stdout + result.stderr


def _agent_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> AgentSettings:
    for key in ("FEATURES_OFF", "RECORDING_ENABLED", "RECORDING_CONSENT_MESSAGE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**VALID, **env}.items():
        monkeypatch.setenv(key, value)
    return AgentSettings(_env_file=None)  # type: ignore[call-arg]


def test_features_off_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="FEATURES_OFF is set but APP_ENV=production"):
        _agent_settings(monkeypatch, APP_ENV="production", FEATURES_OFF="recording")


@pytest.mark.parametrize("app_env", ["dev", "test"])
def test_features_off_switches_each_feature_off_in_dev_and_test(
    monkeypatch: pytest.MonkeyPatch, app_env: str
) -> None:
    settings = _agent_settings(
        monkeypatch,
        APP_ENV=app_env,
        FEATURES_OFF="call_record, retrieval,recording",
        RECORDING_ENABLED="true",
        RECORDING_CONSENT_MESSAGE="This call is recorded.",
    )
    assert settings.features_off == ["call_record", "retrieval", "recording"]
    assert not settings.keeps_call_record
    assert not settings.uses_retrieval
    # every use of recording (recorder, upload, consent notice, its cached audio) reads this flag
    assert settings.recording_enabled is False


@pytest.mark.parametrize(
    ("off", "record", "retrieval", "recording"),
    [
        ("call_record", False, True, True),
        ("retrieval", True, False, True),
        ("recording", True, True, False),
    ],
)
def test_features_off_switches_off_only_what_it_names(
    monkeypatch: pytest.MonkeyPatch, off: str, record: bool, retrieval: bool, recording: bool
) -> None:
    settings = _agent_settings(monkeypatch, APP_ENV="test", FEATURES_OFF=off)
    assert (settings.keeps_call_record, settings.uses_retrieval, settings.recording_enabled) == (
        record,
        retrieval,
        recording,
    )


def test_without_features_off_everything_stays_on(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _agent_settings(monkeypatch, APP_ENV="production")
    assert settings.features_off == []
    assert settings.keeps_call_record and settings.uses_retrieval and settings.recording_enabled


def test_an_unknown_feature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="call_record"):
        _agent_settings(monkeypatch, APP_ENV="test", FEATURES_OFF="database")


def test_without_retrieval_the_tool_searches_nothing() -> None:
    # What the worker builds under FEATURES_OFF=retrieval: no Retrieval, so no pool or embedder
    # is touched and the model hears "not found".
    agent = VoiceDeskAgent(Caller(), None)
    answer = json.loads(asyncio.run(agent.search_knowledge_base(None, "opening hours")))  # type: ignore[arg-type]
    assert answer == {"found": False, "note": NOT_FOUND}
