"""PERSONA_FILE, GUARDRAILS_FILE and REPLY_MAX_WORDS: a bad value stops the worker, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import AgentSettings
from tests.unit.test_agent_settings import VALID
from voicedesk.config import SettingsError, load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key, value in VALID.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SettingsError) as err:
        load_settings(AgentSettings, _env_file=None)
    return str(err.value) + capsys.readouterr().err


def test_defaults_use_the_files_in_prompts(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(AgentSettings, _env_file=None)
    assert settings.reply_max_words == 200 and settings.persona_file is None
    rules = settings.guardrails()
    assert rules is not None and rules.check("I want to talk to a human") is not None


def test_guardrails_can_be_turned_off(env: pytest.MonkeyPatch) -> None:
    env.setenv("GUARDRAILS_ENABLED", "false")
    assert load_settings(AgentSettings, _env_file=None).guardrails() is None


def test_a_bad_persona_file_names_the_variable_and_the_field(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "persona.toml"
    path.write_text('company = "Globex"\nagent_name = "Sam"\n')
    env.setenv("PERSONA_FILE", str(path))
    message = _error(capsys)
    assert "PERSONA_FILE is invalid" in message and "tone: Field required" in message


def test_a_bad_rules_file_names_the_variable(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("GUARDRAILS_FILE", str(tmp_path / "missing.toml"))
    assert "GUARDRAILS_FILE is invalid" in _error(capsys)


@pytest.mark.parametrize("words", ["10", "201", "many"])
def test_the_word_limit_stays_within_200(
    env: pytest.MonkeyPatch, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("REPLY_MAX_WORDS", words)
    assert "REPLY_MAX_WORDS is invalid" in _error(capsys)
