"""Token server configuration: unsafe or malformed settings stop start-up with a named message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.token_server import run_token_server_until_exit
from token_server.settings import TokenServerSettings

REQUIRED = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "secret",
    "FIREBASE_PROJECT_ID": "demo-voicedesk",
    # Never reached (settings fail first), but keeps a broken test from starting Postgres.
    "DATABASE_URL": "postgresql://127.0.0.1:1/none",
}


def test_emulator_outside_dev_or_test_refuses_to_start(tmp_path: Path) -> None:
    env = {**REQUIRED, "APP_ENV": "production", "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}
    result = run_token_server_until_exit(tmp_path, env)

    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST" in result.stderr
    assert "APP_ENV" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_ttl_names_the_variable(tmp_path: Path) -> None:
    result = run_token_server_until_exit(tmp_path, {**REQUIRED, "TOKEN_TTL_SECONDS": "ten minutes"})

    assert result.returncode != 0
    assert "TOKEN_TTL_SECONDS" in result.stderr
    assert "what it is for" in result.stderr
    assert "example: TOKEN_TTL_SECONDS=600" in result.stderr


def test_missing_variable_is_named(tmp_path: Path) -> None:
    env = {**REQUIRED, "LIVEKIT_API_SECRET": ""}
    result = run_token_server_until_exit(tmp_path, env)

    assert result.returncode != 0
    assert "LIVEKIT_API_SECRET is not set" in result.stderr


# In-process checks of the cross-field rules (no .env: _env_file=None).


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> TokenServerSettings:
    for key, value in {**REQUIRED, **env}.items():
        monkeypatch.setenv(key, value)
    return TokenServerSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("app_env", ["dev", "test"])
def test_emulator_allowed_in_dev_and_test(monkeypatch: pytest.MonkeyPatch, app_env: str) -> None:
    settings = _settings(monkeypatch, APP_ENV=app_env, FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099")
    assert settings.emulated_auth


def test_certs_url_override_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="FIREBASE_ID_TOKEN_CERTS_URL"):
        _settings(monkeypatch, APP_ENV="production", FIREBASE_ID_TOKEN_CERTS_URL="http://127.0.0.1:1/certs")


def test_defaults_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    settings = _settings(monkeypatch, CORS_ALLOWED_ORIGINS="https://app.example.com, http://localhost:5173")
    assert settings.app_env == "production"
    assert settings.token_ttl_seconds == 600
    assert settings.agent_name == "voicedesk"
    assert settings.allowed_agent_names == ["voicedesk"]
    assert settings.cors_allowed_origins == ["https://app.example.com", "http://localhost:5173"]
    assert (settings.token_server_host, settings.token_server_port, settings.token_server_workers) == (
        "127.0.0.1",
        8000,
        1,
    )


def test_default_agent_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="ALLOWED_AGENT_NAMES"):
        _settings(monkeypatch, AGENT_NAME="voicedesk", ALLOWED_AGENT_NAMES="sales,support")


def test_cors_origin_with_path_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        _settings(monkeypatch, CORS_ALLOWED_ORIGINS="https://app.example.com/")
