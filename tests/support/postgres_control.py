"""Take the test session's real Postgres away and bring it back, as an outage would."""

from __future__ import annotations

import os

import psycopg

from db.embedded import start_embedded, stop_embedded
from tests.support.postgres import TEST_DATA_DIR


def stop_postgres() -> None:
    if os.environ.get("TEST_DATABASE_URL"):
        raise RuntimeError("outage tests need the embedded server; unset TEST_DATABASE_URL")
    stop_embedded(TEST_DATA_DIR)


def start_postgres(database_url: str) -> None:
    start_embedded(TEST_DATA_DIR)
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        conn.execute("select 1")
