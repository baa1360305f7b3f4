"""Token server configuration: unsafe or malformed settings stop start-up with a named message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.token_server import run_token_server_until_exit
from token_server.settings import DEFAULT_VOICE_CHOICES, REPO_ROOT, TokenServerSettings, VoiceChoice
from token_server.web import content_security_policy

REQUIRED = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "secret",
    "FIREBASE_PROJECT_ID": "demo-voicedesk",
    "FIREBASE_WEB_API_KEY": "AIzaSy-unit-test-key",  # required in production (the default APP_ENV)
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


# --- browser app settings -------------------------------------------------------------------------


def test_web_api_key_is_required_in_production(tmp_path: Path) -> None:
    env = {**REQUIRED, "APP_ENV": "production", "FIREBASE_WEB_API_KEY": ""}
    result = run_token_server_until_exit(tmp_path, env)

    assert result.returncode != 0
    assert "FIREBASE_WEB_API_KEY is invalid" in result.stderr
    assert "required in production" in result.stderr
    assert "example: FIREBASE_WEB_API_KEY=" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("app_env", ["dev", "test"])
def test_web_api_key_defaults_to_a_placeholder_outside_production(
    monkeypatch: pytest.MonkeyPatch, app_env: str
) -> None:
    settings = _settings(
        monkeypatch, APP_ENV=app_env, FIREBASE_WEB_API_KEY="", FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099"
    )
    assert settings.firebase_web_api_key == "demo-api-key"
    assert settings.auth_emulator_url == "http://127.0.0.1:9099"


def test_browser_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    for name in ("FIREBASE_AUTH_DOMAIN", "GOOGLE_SIGN_IN_ENABLED", "VOICE_CHOICES", "WEB_DIST_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings(monkeypatch)
    assert settings.firebase_web_api_key == "AIzaSy-unit-test-key"
    assert settings.firebase_auth_domain == "demo-voicedesk.firebaseapp.com"
    assert settings.google_sign_in_enabled is False
    assert settings.auth_emulator_url is None
    assert settings.voice_choices == list(DEFAULT_VOICE_CHOICES)
    assert settings.voice_choices[0] == VoiceChoice(id="21m00Tcm4TlvDq8ikWAM", name="Rachel")
    assert settings.web_dist_dir == REPO_ROOT / "web" / "dist"


def test_voice_choices_from_an_id_name_list(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, VOICE_CHOICES=" 21m00Tcm4TlvDq8ikWAM:Rachel , abc123:Ms. Nova Smith,")
    assert settings.voice_choices == [
        VoiceChoice(id="21m00Tcm4TlvDq8ikWAM", name="Rachel"),
        VoiceChoice(id="abc123", name="Ms. Nova Smith"),
    ]
    assert settings.voice_ids == {"21m00Tcm4TlvDq8ikWAM", "abc123"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("21m00Tcm4TlvDq8ikWAM", "is not id:Name"),
        ("21m00Tcm4TlvDq8ikWAM:", "is not id:Name"),
        (":Rachel", "is not id:Name"),
        ("bad/id:Rachel", "should match pattern"),
        ("a1:Rachel,a1:Bella", "listed twice"),
        (",", "at least one voice"),
    ],
)
def test_malformed_voice_choices_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _settings(monkeypatch, VOICE_CHOICES=value)


def test_malformed_voice_choices_name_the_variable(tmp_path: Path) -> None:
    result = run_token_server_until_exit(tmp_path, {**REQUIRED, "VOICE_CHOICES": "Rachel"})

    assert result.returncode != 0
    assert "VOICE_CHOICES is invalid" in result.stderr
    assert "example: VOICE_CHOICES=21m00Tcm4TlvDq8ikWAM:Rachel" in result.stderr


@pytest.mark.parametrize(
    "value", ["https://voicedesk.firebaseapp.com", "voicedesk.firebaseapp.com/path", "a b"]
)
def test_auth_domain_is_a_host_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(ValidationError, match="host name"):
        _settings(monkeypatch, FIREBASE_AUTH_DOMAIN=value)


def test_custom_auth_domain_and_google_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, FIREBASE_AUTH_DOMAIN="auth.example.com", GOOGLE_SIGN_IN_ENABLED="true")
    assert settings.firebase_auth_domain == "auth.example.com"
    assert settings.google_sign_in_enabled is True


# --- the browser app's Content-Security-Policy (a function of the settings) ------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in csp.split(";"))}


def test_csp_allows_self_livekit_and_firebase_only(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, LIVEKIT_URL="wss://voicedesk.livekit.cloud")
    csp = _directives(content_security_policy(settings))

    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["connect-src"] == [
        "'self'",
        "wss://voicedesk.livekit.cloud",
        "https://voicedesk.livekit.cloud",
        "https://identitytoolkit.googleapis.com",
        "https://securetoken.googleapis.com",
    ]
    assert csp["frame-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]


def test_csp_with_emulator_google_sign_in_and_supabase_recordings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        APP_ENV="dev",
        FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099",
        GOOGLE_SIGN_IN_ENABLED="true",
        PUBLIC_BASE_URL="https://desk.example.com/voicedesk",
    )
    csp = _directives(content_security_policy(settings, recordings_url="https://abcd.supabase.co/storage"))

    assert "http://127.0.0.1:9099" in csp["connect-src"]
    assert "ws://127.0.0.1:7880" in csp["connect-src"] and "http://127.0.0.1:7880" in csp["connect-src"]
    assert csp["script-src"] == ["'self'", "https://apis.google.com"]
    assert csp["frame-src"] == ["'self'", "http://127.0.0.1:9099", "https://demo-voicedesk.firebaseapp.com"]
    assert csp["media-src"] == ["'self'", "blob:", "https://desk.example.com", "https://abcd.supabase.co"]
