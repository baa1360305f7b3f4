"""Token server configuration: environment variables (and ``.env``), validated at start-up.

Load it with :func:`voicedesk.config.load_settings` so that a missing or malformed variable stops
the process with a message naming the variable, its purpose and an example.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, FilePath, HttpUrl, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AppEnv = Literal["dev", "test", "production"]

# Environments where unverified (emulator) tokens and test-only certificate URLs are acceptable.
NON_PRODUCTION_ENVS: frozenset[str] = frozenset({"dev", "test"})

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    """Accept ``a,b , c`` from the environment (pydantic-settings would expect JSON for lists)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class TokenServerSettings(BaseSettings):
    """Everything ``python -m token_server`` needs; field order matters for cross-field checks."""

    # env_ignore_empty: ``VAR=`` means unset, as most deployment tools write it.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    app_env: AppEnv = Field(
        default="production",
        description="Deployment environment; the Auth emulator and test-only switches are "
        "accepted only in dev and test.",
        examples=["dev"],
    )
    livekit_url: str = Field(
        description="LiveKit server URL, returned to clients as server_url and used for the server API.",
        examples=["wss://voicedesk.livekit.cloud"],
    )
    livekit_api_key: str = Field(
        min_length=1,
        description="LiveKit API key that signs participant tokens.",
        examples=["devkey"],
    )
    livekit_api_secret: SecretStr = Field(
        min_length=1,
        description="LiveKit API secret that signs participant tokens.",
        examples=["secret"],
    )
    firebase_project_id: str = Field(
        min_length=1,
        description="Firebase project whose ID tokens are accepted (their aud claim).",
        examples=["demo-voicedesk"],
    )
    firebase_auth_emulator_host: str | None = Field(
        default=None,
        description="host:port of the Firebase Auth emulator (dev and test only: firebase-admin "
        "then checks neither signature nor expiry).",
        examples=["127.0.0.1:9099"],
    )
    firebase_id_token_certs_url: HttpUrl | None = Field(
        default=None,
        description="Test-only: URL serving the x509 certificates that ID tokens are checked "
        "against, instead of Google's (dev and test only).",
        examples=["http://127.0.0.1:8765/certs"],
    )
    google_application_credentials: FilePath | None = Field(
        default=None,
        description="Path to a Firebase service-account JSON file (production; not needed just "
        "to verify ID tokens).",
        examples=["/run/secrets/firebase-service-account.json"],
    )
    token_ttl_seconds: int = Field(
        default=600,
        ge=30,
        le=86_400,
        description="Lifetime of a minted LiveKit participant token, in seconds.",
        examples=[600],
    )
    agent_name: str = Field(
        default="voicedesk",
        description="Agent dispatched into each new call room unless the client asks for "
        "another allowed one.",
        examples=["voicedesk"],
    )
    allowed_agent_names: CommaList = Field(
        default_factory=list,
        validate_default=True,
        description="Comma-separated agent names a client may ask for (defaults to AGENT_NAME).",
        examples=["voicedesk,voicedesk-sales"],
    )
    cors_allowed_origins: CommaList = Field(
        default_factory=list,
        description="Comma-separated browser origins allowed to call the API (scheme://host[:port]).",
        examples=["https://app.example.com,http://localhost:5173"],
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Externally visible base URL of this server; signed links to locally stored "
        "recordings start with it.",
        examples=["https://desk.example.com"],
    )
    token_server_host: str = Field(
        default="127.0.0.1",
        description="Address the HTTP server listens on.",
        examples=["0.0.0.0"],
    )
    token_server_port: int = Field(
        default=8000,
        ge=1,
        le=65_535,
        description="Port the HTTP server listens on.",
        examples=[8000],
    )
    token_server_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Number of uvicorn worker processes.",
        examples=[2],
    )

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url(cls, value: str) -> str:
        if not re.match(r"^(wss?|https?)://[^/\s]+", value):
            raise ValueError("must be a ws://, wss://, http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return value.rstrip("/")

    @field_validator("firebase_auth_emulator_host", mode="before")
    @classmethod
    def _emulator_host(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str) or not _HOST_PORT.match(value.strip()):
            raise ValueError("must be host:port, without a scheme")
        app_env = info.data.get("app_env")
        if app_env not in NON_PRODUCTION_ENVS:
            raise ValueError(
                f"FIREBASE_AUTH_EMULATOR_HOST is set but APP_ENV={app_env or '?'}: with the emulator, "
                "firebase-admin checks neither signature nor expiry of ID tokens, so it is refused "
                "unless APP_ENV is dev or test. Unset FIREBASE_AUTH_EMULATOR_HOST or set APP_ENV=dev."
            )
        return value.strip()

    @field_validator("firebase_id_token_certs_url", mode="before")
    @classmethod
    def _certs_url(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        app_env = info.data.get("app_env")
        if app_env not in NON_PRODUCTION_ENVS:
            raise ValueError(
                f"FIREBASE_ID_TOKEN_CERTS_URL is set but APP_ENV={app_env or '?'}: replacing "
                "Google's certificates is for tests only, so it is refused unless APP_ENV is dev "
                "or test."
            )
        return value

    @field_validator("agent_name")
    @classmethod
    def _agent_name(cls, value: str) -> str:
        if not _AGENT_NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("allowed_agent_names", mode="before")
    @classmethod
    def _allowed_agents_split(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("allowed_agent_names")
    @classmethod
    def _allowed_agents(cls, value: list[str], info: ValidationInfo) -> list[str]:
        agent_name = info.data.get("agent_name")
        if not value:
            return [agent_name] if agent_name else []
        for name in value:
            if not _AGENT_NAME.match(name):
                raise ValueError(f"{name!r}: agent names are 1-64 letters, digits, '_', '.' or '-'")
        if agent_name and agent_name not in value:
            raise ValueError(
                f"AGENT_NAME={agent_name} (the agent dispatched by default) must be one of "
                "ALLOWED_AGENT_NAMES"
            )
        return list(dict.fromkeys(value))

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _origins_split(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port], no path or trailing slash"
                )
        return value

    @property
    def emulated_auth(self) -> bool:
        """True when ID tokens come from the Auth emulator (unsigned; dev and test only)."""
        return self.firebase_auth_emulator_host is not None
