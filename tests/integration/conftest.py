"""Fixtures for integration tests: the Firebase Auth emulator and real token-server processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.firebase_emulator import FirebaseAuthEmulator, SigningAuthority
from tests.support.token_server import (
    TokenServer,
    start_token_server,
    token_server_env,
    unreachable_livekit_env,
)


@pytest.fixture(scope="session")
def token_server(
    tmp_path_factory: pytest.TempPathFactory, firebase_emulator: FirebaseAuthEmulator, database_url: str
) -> Iterator[TokenServer]:
    """APP_ENV=test with the Auth emulator; LiveKit unreachable (minting needs no LiveKit)."""
    env = {
        **token_server_env(database_url),
        **unreachable_livekit_env(),
        "FIREBASE_AUTH_EMULATOR_HOST": firebase_emulator.host,
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
    """No emulator: firebase-admin checks RS256 signatures against the test's own certificates."""
    env = {
        **token_server_env(database_url),
        **unreachable_livekit_env(),
        "FIREBASE_ID_TOKEN_CERTS_URL": signing_authority.certs_url,
    }
    server = start_token_server(
        tmp_path_factory.mktemp("strict-token-server"), env, name="strict-token-server"
    )
    yield server
    server.service.stop()
