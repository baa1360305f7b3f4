"""Session fixtures for the real components every integration and end-to-end test shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent_worker import start_worker
from tests.support.firebase_emulator import FirebaseAuthEmulator, start_auth_emulator
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.postgres import drop_database, fresh_database, stop_test_server
from tests.support.processes import Service
from tests.support.provider_emulators import ProviderEmulators, start_provider_emulators
from tests.support.redis_server import RedisServer, start_redis
from tests.support.softphone import Softphone, start_softphone
from tests.support.token_server import TokenServer, start_token_server, token_server_env


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres_after_the_run() -> Iterator[None]:
    """Whichever test started this run's embedded Postgres, nothing is left running after it."""
    yield
    stop_test_server()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new, migrated database on a real Postgres with pgvector; dropped afterwards."""
    url = fresh_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_server(work_dir: Path) -> Iterator[RedisServer]:
    server = start_redis(work_dir / "redis")
    yield server
    server.service.stop()


@pytest.fixture(scope="session")
def livekit_server(work_dir: Path, redis_server: RedisServer) -> Iterator[LiveKitServer]:
    """One LiveKit server for every test, with Redis so that its SIP APIs work too."""
    server = start_livekit(work_dir / "livekit", redis_address=redis_server.address)
    yield server
    server.service.stop()


@pytest.fixture(scope="session")
def provider_emulators(work_dir: Path) -> Iterator[ProviderEmulators]:
    emulators = start_provider_emulators(work_dir / "emulators")
    yield emulators
    emulators.stop()


@pytest.fixture(scope="session")
def call_policy_file(work_dir: Path) -> Path:
    """The worker's CALL_POLICY_FILE: admit-all; tests rewrite it (the worker reloads it per call)."""
    path = work_dir / "call_policy.yaml"
    path.write_text("{}\n")
    return path


@pytest.fixture(scope="session")
def human_phone(work_dir: Path) -> Iterator[Softphone]:
    """The person a caller is transferred to: a softphone that answers."""
    phone = start_softphone(work_dir, "human", user="human", auto_answer=True)
    yield phone
    phone.stop()


@pytest.fixture(scope="session")
def worker_env(
    work_dir: Path,
    livekit_server: LiveKitServer,
    provider_emulators: ProviderEmulators,
    database_url: str,
    call_policy_file: Path,
    human_phone: Softphone,
) -> dict[str, str]:
    """How every test worker is configured: the test LiveKit server, providers emulated."""
    return {
        **livekit_server.env(),
        **provider_emulators.env(),
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "CALL_JOURNAL_DIR": str(work_dir / "journal"),
        "RECORDINGS_DIR": str(work_dir / "recordings"),  # the live token server serves them
        "CALL_POLICY_FILE": str(call_policy_file),
        "HUMAN_TRANSFER_TO": human_phone.sip_uri,
        "OUTBOUND_RINGING_SECONDS": "8",
        "GREETING_CACHE_DIR": str(work_dir / "greetings"),
        # The agent is dispatched as the token is minted; every test caller joins at once.
        "CALLER_JOIN_TIMEOUT_SECONDS": "12",
    }


@pytest.fixture(scope="session")
def agent_worker(work_dir: Path, worker_env: dict[str, str]) -> Iterator[Service]:
    """A real worker process registered with the test LiveKit server."""
    worker = start_worker(work_dir / "worker", worker_env)
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def firebase_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirebaseAuthEmulator]:
    emulator = start_auth_emulator(tmp_path_factory.mktemp("firebase-emulator"))
    yield emulator
    emulator.service.stop()


@pytest.fixture(scope="session")
def live_token_server_env(
    work_dir: Path, firebase_emulator: FirebaseAuthEmulator, database_url: str, livekit_server: LiveKitServer
) -> dict[str, str]:
    """How the live token server is configured: the Auth emulator and the real LiveKit server."""
    return {
        **token_server_env(database_url),
        **livekit_server.env(),
        "FIREBASE_AUTH_EMULATOR_HOST": firebase_emulator.host,
        "RECORDINGS_DIR": str(work_dir / "recordings"),
    }


@pytest.fixture(scope="session")
def live_token_server(
    tmp_path_factory: pytest.TempPathFactory, live_token_server_env: dict[str, str]
) -> Iterator[TokenServer]:
    env = live_token_server_env
    server = start_token_server(tmp_path_factory.mktemp("live-token-server"), env, name="live-token-server")
    yield server
    server.service.stop()
