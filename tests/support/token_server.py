"""The real token server (``python -m token_server``) as a subprocess on a free port, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.firebase_emulator import PROJECT_ID
from tests.support.processes import Service, free_port, http_ok, start_service

# Optional variables a developer's shell might carry; blanked unless a test sets them, so each
# server runs exactly the configuration its test describes.
_OPTIONAL_VARS = (
    "FIREBASE_AUTH_EMULATOR_HOST",
    "FIREBASE_ID_TOKEN_CERTS_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "ALLOWED_AGENT_NAMES",
    "CORS_ALLOWED_ORIGINS",
    "FIREBASE_WEB_API_KEY",
    "FIREBASE_AUTH_DOMAIN",
    "GOOGLE_SIGN_IN_ENABLED",
    "VOICE_CHOICES",
    "WEB_DIST_DIR",
    "REQUIRE_VERIFIED_EMAIL",
)


@dataclass
class TokenServer:
    service: Service
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


ALLOWED_ORIGIN = "http://app.voicedesk.test:5173"
TOKEN_TTL_SECONDS = 900  # not the default, so tests see the setting applied
ALLOWED_AGENTS = "voicedesk,voicedesk-sales,voicedesk-realtime,voicedesk-realtime-voice"


def token_server_env(database_url: str) -> dict[str, str]:
    """What every test token server shares; callers add the Firebase and LiveKit parts."""
    return {
        "FIREBASE_PROJECT_ID": PROJECT_ID,
        "DATABASE_URL": database_url,
        "TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
        "AGENT_NAME": "voicedesk",
        "ALLOWED_AGENT_NAMES": ALLOWED_AGENTS,
        "CORS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    }


def unreachable_livekit_env() -> dict[str, str]:
    """LiveKit settings pointing at a closed port (tokens still mint; /readyz reports livekit)."""
    return {
        "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}",
        "LIVEKIT_API_KEY": "testkey",
        "LIVEKIT_API_SECRET": "voicedesk-test-secret-unreachable-000000",
    }


def server_env(env: dict[str, str]) -> dict[str, str]:
    """Defaults for a test server, then ``env`` on top."""
    return {**dict.fromkeys(_OPTIONAL_VARS, ""), "APP_ENV": "test", "TOKEN_SERVER_HOST": "127.0.0.1", **env}


def start_token_server(work_dir: Path, env: dict[str, str], *, name: str = "token-server") -> TokenServer:
    """Start the server with ``env`` (must include LIVEKIT_*, FIREBASE_PROJECT_ID, DATABASE_URL).

    Runs in ``work_dir`` so that no ``.env`` from the checkout leaks into the configuration.
    """
    port = free_port()
    # Signed recording URLs point at the server itself unless the test says otherwise.
    full_env = server_env(
        {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **env, "TOKEN_SERVER_PORT": str(port)}
    )
    svc = start_service(
        name,
        [sys.executable, "-m", "token_server"],
        work_dir,
        env=full_env,
        cwd=work_dir,
        ready=http_ok(f"http://127.0.0.1:{port}/healthz"),
        timeout=60,
    )
    return TokenServer(svc, port, full_env)


def run_token_server_until_exit(
    work_dir: Path, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m token_server`` expecting it to stop by itself (bad configuration)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "token_server"],
        cwd=work_dir,
        env={**os.environ, **server_env(env)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
