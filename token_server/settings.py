"""Token server configuration: environment variables (and ``.env``), validated at start-up.

Load it with :func:`voicedesk.config.load_settings` so that a missing or malformed variable stops
the process with a message naming the variable, its purpose and an example.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voicedesk.config import CommaList, check_agent_name

AppEnv = Literal["dev", "test", "production"]

# Environments where unverified (emulator) tokens and test-only certificate URLs are acceptable.
NON_PRODUCTION_ENVS: frozenset[str] = frozenset({"dev", "test"})

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(:\d{{1,5}})?$")
# ElevenLabs voice ids: 20 letters and digits today; the bound matches what /me/settings accepts.
VOICE_ID_PATTERN = r"^[A-Za-z0-9]{1,64}$"
MAX_VOICE_NAME_CHARS = 64

# The checkout this module sits in: the default place of the built browser app (web/dist).
REPO_ROOT = Path(__file__).resolve().parent.parent
# Stands in for the web API key in dev and test: the Auth emulator accepts any key.
PLACEHOLDER_WEB_API_KEY = "demo-api-key"


class VoiceChoice(BaseModel):
    """One ElevenLabs voice a user may pick in their settings."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=VOICE_ID_PATTERN, description="ElevenLabs voice id")
    name: str = Field(min_length=1, max_length=MAX_VOICE_NAME_CHARS, description="Name shown to users")


# Premade ElevenLabs voices (Rachel is also the agent's default, ELEVENLABS_VOICE_ID).
DEFAULT_VOICE_CHOICES: tuple[VoiceChoice, ...] = (
    VoiceChoice(id="21m00Tcm4TlvDq8ikWAM", name="Rachel"),
    VoiceChoice(id="EXAVITQu4vr4xnSDxMaL", name="Bella"),
    VoiceChoice(id="ErXwobaYiN019PkySvjV", name="Antoni"),
    VoiceChoice(id="pNInz6obpgDQGcFmaJgB", name="Adam"),
)


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
    firebase_web_api_key: str | None = Field(
        default=None,
        validate_default=True,
        description="Firebase Web API key the browser app signs in with (public, not a secret; "
        "required in production, defaults to a placeholder the Auth emulator accepts in dev/test).",
        examples=["AIzaSyA-example-web-api-key"],
    )
    firebase_auth_domain: str | None = Field(
        default=None,
        validate_default=True,
        description="Firebase Auth domain for the browser app (defaults to "
        "<FIREBASE_PROJECT_ID>.firebaseapp.com).",
        examples=["voicedesk.firebaseapp.com"],
    )
    google_sign_in_enabled: bool = Field(
        default=False,
        description="Offer 'Sign in with Google' in the browser app (enable the Google provider "
        "in Firebase first).",
        examples=["true"],
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
    require_verified_email: bool = Field(
        default=False,
        description="Refuse calls (403 from POST /token) until the user's email address is "
        "verified (the ID token's email_verified claim).",
    )
    early_dispatch: bool = Field(
        default=True,
        description="Create the call's room and dispatch the agent when the token is minted, so the "
        "agent is in the room with the greeting ready when the caller joins; off, the agent is "
        "dispatched when the caller's join creates the room.",
    )
    cors_allowed_origins: CommaList = Field(
        default_factory=list,
        description="Comma-separated browser origins allowed to call the API (scheme://host[:port]).",
        examples=["https://app.example.com,http://localhost:5173"],
    )
    voice_choices: Annotated[list[VoiceChoice], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_VOICE_CHOICES),
        description="ElevenLabs voices users may pick in their settings, as comma-separated id:Name.",
        examples=["21m00Tcm4TlvDq8ikWAM:Rachel,EXAVITQu4vr4xnSDxMaL:Bella"],
    )
    web_dist_dir: Path = Field(
        default=REPO_ROOT / "web" / "dist",
        description="Directory of the built browser app, served at / (build it with `make web`).",
        examples=["/srv/voicedesk/web/dist"],
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
        return check_agent_name(value)

    @field_validator("allowed_agent_names")
    @classmethod
    def _allowed_agents(cls, value: list[str], info: ValidationInfo) -> list[str]:
        agent_name = info.data.get("agent_name")
        if not value:
            return [agent_name] if agent_name else []
        for name in value:
            check_agent_name(name)
        if agent_name and agent_name not in value:
            raise ValueError(
                f"AGENT_NAME={agent_name} (the agent dispatched by default) must be one of "
                "ALLOWED_AGENT_NAMES"
            )
        return list(dict.fromkeys(value))

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port], no path or trailing slash"
                )
        return value

    @field_validator("firebase_web_api_key", mode="before")
    @classmethod
    def _web_api_key(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None and not isinstance(value, str):
            return value  # let the str type check name the problem
        if info.data.get("app_env") in NON_PRODUCTION_ENVS:
            return PLACEHOLDER_WEB_API_KEY
        raise ValueError(
            "required in production: the browser app needs the Firebase project's Web API key "
            "(Firebase console > Project settings > General > Web API key)"
        )

    @field_validator("firebase_auth_domain", mode="before")
    @classmethod
    def _auth_domain(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            project = info.data.get("firebase_project_id")
            return f"{project}.firebaseapp.com" if project else None
        if not isinstance(value, str) or not _HOSTNAME.match(value.strip()):
            raise ValueError("must be a host name without a scheme, e.g. voicedesk.firebaseapp.com")
        return value.strip()

    @field_validator("voice_choices", mode="before")
    @classmethod
    def _voice_choices_split(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        choices = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            voice_id, sep, name = item.partition(":")
            if not sep or not voice_id.strip() or not name.strip():
                raise ValueError(f"{item!r} is not id:Name (e.g. 21m00Tcm4TlvDq8ikWAM:Rachel)")
            choices.append({"id": voice_id.strip(), "name": name.strip()})
        return choices

    @field_validator("voice_choices")
    @classmethod
    def _voice_choices(cls, value: list[VoiceChoice]) -> list[VoiceChoice]:
        if not value:
            raise ValueError("list at least one voice (id:Name)")
        seen: set[str] = set()
        for choice in value:
            if choice.id in seen:
                raise ValueError(f"voice {choice.id} is listed twice")
            seen.add(choice.id)
        return value

    @property
    def emulated_auth(self) -> bool:
        """True when ID tokens come from the Auth emulator (unsigned; dev and test only)."""
        return self.firebase_auth_emulator_host is not None

    @property
    def auth_emulator_url(self) -> str | None:
        """Where the browser's Firebase Auth SDK finds the emulator; None with real Firebase."""
        host = self.firebase_auth_emulator_host
        return f"http://{host}" if host else None

    @property
    def voice_ids(self) -> frozenset[str]:
        return frozenset(choice.id for choice in self.voice_choices)
