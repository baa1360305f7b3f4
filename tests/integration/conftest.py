"""Fixtures for integration tests: the Firebase Auth emulator and real token-server processes."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from db.storage import StorageSettings
from tests.support.firebase_emulator import FirebaseAuthEmulator, SignedUpUser, SigningAuthority
from tests.support.processes import free_port, http_ok, start_service
from tests.support.provider_emulators import ProviderEmulators
from tests.support.token_server import (
    TokenServer,
    server_env,
    start_token_server,
    token_server_env,
    unreachable_livekit_env,
)

# Shared by the operator token server and the test process (which uploads as the worker would).
RECORDINGS_SIGNING_SECRET = "voicedesk-test-recordings-signing-secret-0123456789"
RECORDING_URL_TTL_SECONDS = 120


# A built browser app in miniature, as `make web` leaves it in web/dist.
WEB_INDEX_HTML = (
    '<!doctype html><html><head><title>voicedesk</title></head><body><div id="app"></div>'
    '<script type="module" src="/assets/app.js"></script></body></html>\n'
)
WEB_APP_JS = 'console.log("voicedesk");\n'
# Settings the strict server shows on GET /config (the emulator server keeps the defaults).
STRICT_WEB_API_KEY = "AIzaSy-test-web-api-key"
STRICT_AUTH_DOMAIN = "auth.voicedesk.test"


@pytest.fixture(scope="session")
def web_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("web-dist")
    (dist / "index.html").write_text(WEB_INDEX_HTML)
    (dist / "assets").mkdir()
    (dist / "assets" / "app.js").write_text(WEB_APP_JS)
    return dist


@pytest.fixture(scope="session")
def token_server(
    tmp_path_factory: pytest.TempPathFactory,
    firebase_emulator: FirebaseAuthEmulator,
    database_url: str,
    web_dist: Path,
) -> Iterator[TokenServer]:
    """APP_ENV=test with the Auth emulator; LiveKit unreachable (minting needs no LiveKit).

    It serves the miniature browser app of ``web_dist``.
    """
    env = {
        **token_server_env(database_url),
        **unreachable_livekit_env(),
        "FIREBASE_AUTH_EMULATOR_HOST": firebase_emulator.host,
        "WEB_DIST_DIR": str(web_dist),
    }
    server = start_token_server(tmp_path_factory.mktemp("token-server"), env)
    yield server
    server.service.stop()


@pytest.fixture(scope="session")
def signing_authority() -> Iterator[SigningAuthority]:
    authority = SigningAuthority()
    yield authority
    authority.close()


@pytest.fixture(scope="session")
def strict_token_server(
    tmp_path_factory: pytest.TempPathFactory, signing_authority: SigningAuthority, database_url: str
) -> Iterator[TokenServer]:
    """No emulator: firebase-admin checks RS256 signatures against the test's own certificates.

    Configured like production for the browser: its own web API key and auth domain, Google
    sign-in on, verified email addresses required, and no built browser app (WEB_DIST_DIR does
    not exist).
    """
    work_dir = tmp_path_factory.mktemp("strict-token-server")
    env = {
        **token_server_env(database_url),
        **unreachable_livekit_env(),
        "FIREBASE_ID_TOKEN_CERTS_URL": signing_authority.certs_url,
        "FIREBASE_WEB_API_KEY": STRICT_WEB_API_KEY,
        "FIREBASE_AUTH_DOMAIN": STRICT_AUTH_DOMAIN,
        "GOOGLE_SIGN_IN_ENABLED": "true",
        "REQUIRE_VERIFIED_EMAIL": "true",
        "WEB_DIST_DIR": str(work_dir / "web-not-built"),
    }
    server = start_token_server(work_dir, env, name="strict-token-server")
    yield server
    server.service.stop()


# --- operator API ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="session")
def local_storage(recordings_dir: Path) -> StorageSettings:
    """The local recording backend exactly as the operator token server is configured."""
    return StorageSettings(
        _env_file=None,  # type: ignore[call-arg]
        app_env="test",
        recordings_backend="local",
        recordings_dir=recordings_dir,
        recordings_signing_secret=RECORDINGS_SIGNING_SECRET,
        recording_url_ttl_seconds=RECORDING_URL_TTL_SECONDS,
    )


@pytest.fixture(scope="session")
def operator_server(
    tmp_path_factory: pytest.TempPathFactory,
    firebase_emulator: FirebaseAuthEmulator,
    database_url: str,
    recordings_dir: Path,
) -> Iterator[TokenServer]:
    """A token server whose PUBLIC_BASE_URL is its own address, serving local recordings.

    Started here rather than with start_token_server because PUBLIC_BASE_URL must name the port.
    """
    work_dir = tmp_path_factory.mktemp("operator-token-server")
    port = free_port()
    env = server_env(
        {
            **token_server_env(database_url),
            **unreachable_livekit_env(),
            "FIREBASE_AUTH_EMULATOR_HOST": firebase_emulator.host,
            "TOKEN_SERVER_PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "RECORDINGS_BACKEND": "local",
            "RECORDINGS_DIR": str(recordings_dir),
            "RECORDINGS_SIGNING_SECRET": RECORDINGS_SIGNING_SECRET,
            "RECORDING_URL_TTL_SECONDS": str(RECORDING_URL_TTL_SECONDS),
            "SUPABASE_URL": "",
            "SUPABASE_SERVICE_ROLE_KEY": "",
        }
    )
    svc = start_service(
        "operator-token-server",
        [sys.executable, "-m", "token_server"],
        work_dir,
        env=env,
        cwd=work_dir,
        ready=http_ok(f"http://127.0.0.1:{port}/healthz"),
        timeout=60,
    )
    yield TokenServer(svc, port, env)
    svc.stop()


@dataclass(frozen=True)
class SignedInOperator:
    user: SignedUpUser
    id_token: str  # carries the operator claim

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.id_token}"}


@pytest.fixture(scope="session")
def operator(firebase_emulator: FirebaseAuthEmulator) -> SignedInOperator:
    """A Firebase user made operator the way production does it (custom claim), then signed in again."""
    user = firebase_emulator.sign_up(display_name="Olive Operator")
    firebase_emulator.set_custom_claims(user.uid, {"operator": True})
    return SignedInOperator(user, firebase_emulator.sign_in(user.email, user.password))


_JSON_TURN_COLUMNS = frozenset({"latency", "tool_arguments", "tool_result"})


class CallRows:
    """Test data written with plain SQL, as the agent writes it in production."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def profile(self, name: str = "Test Caller") -> uuid.UUID:
        row = self.conn.execute(
            "insert into profiles (firebase_uid, display_name) values (%s, %s) returning id",
            (f"test-{secrets.token_hex(8)}", name),
        ).fetchone()
        assert row is not None
        return row[0]

    def call(
        self,
        *,
        started_at: datetime,
        profile_id: uuid.UUID | None = None,
        channel: str = "web",
        status: str = "completed",
        ended_at: datetime | None = None,
        **columns: Any,
    ) -> uuid.UUID:
        call_id = uuid.uuid4()
        values: dict[str, Any] = {
            "id": call_id,
            "profile_id": profile_id,
            "channel": channel,
            "direction": "outbound" if channel == "pstn_outbound" else "inbound",
            "status": status,
            "room_name": f"call-{call_id}",
            "started_at": started_at,
            "ended_at": ended_at,
            **{k: Jsonb(v) if isinstance(v, dict) else v for k, v in columns.items()},
        }
        names = ", ".join(values)
        marks = ", ".join(f"%({k})s" for k in values)
        self.conn.execute(f"insert into calls ({names}) values ({marks})", values)  # type: ignore[arg-type]
        return call_id

    def turn(self, call_id: uuid.UUID, sequence: int, role: str, content: str, **columns: Any) -> None:
        values: dict[str, Any] = {
            "call_id": call_id,
            "sequence": sequence,
            "role": role,
            "content": content,
            **{
                k: Jsonb(v) if k in {"latency", "tool_arguments", "tool_result"} else v
                for k, v in columns.items()
            },
        }
        names = ", ".join(values)
        marks = ", ".join(f"%({k})s" for k in values)
        self.conn.execute(f"insert into call_turns ({names}) values ({marks})", values)  # type: ignore[arg-type]

    def event(
        self, call_id: uuid.UUID, sequence: int, kind: str, detail: dict[str, Any], at: datetime
    ) -> None:
        self.conn.execute(
            "insert into call_events (call_id, sequence, kind, detail, occurred_at) "
            "values (%s, %s, %s, %s, %s)",
            (call_id, sequence, kind, Jsonb(detail), at),
        )


@pytest.fixture(scope="session")
def call_rows(database_url: str) -> Iterator[CallRows]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield CallRows(conn)


@pytest.fixture
def emulators(provider_emulators: ProviderEmulators) -> ProviderEmulators:
    """The session's provider emulators, with no script, latency or fault left by another test."""
    provider_emulators.reset()
    return provider_emulators
