"""A real Postgres with pgvector for tests: the embedded server, or TEST_DATABASE_URL if given."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psycopg

from db.embedded import start_embedded, stop_embedded
from db.migrations import apply_migrations

# One cluster per test process, so concurrent runs never stop or crash each other's server.
# Under /tmp because pgserver relaxes the permissions of the data dir's parents when run as root.
TEST_DATA_DIR = Path(f"/tmp/voicedesk-test/pg-{os.getpid()}")


def admin_url(data_dir: Path = TEST_DATA_DIR) -> str:
    """TEST_DATABASE_URL (any Postgres with pgvector) or the embedded server, started on demand."""
    return os.environ.get("TEST_DATABASE_URL") or start_embedded(data_dir)


def fresh_database(data_dir: Path = TEST_DATA_DIR) -> str:
    """Create a new, migrated database, so every test session starts from the migrations."""
    name = f"voicedesk_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(data_dir), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')  # type: ignore[arg-type]
    url = psycopg.conninfo.make_conninfo(admin_url(data_dir), dbname=name)
    apply_migrations(url)
    return url


def drop_database(url: str, data_dir: Path = TEST_DATA_DIR) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url(data_dir), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')  # type: ignore[arg-type]


def stop_test_server(data_dir: Path = TEST_DATA_DIR) -> None:
    """Leave no server and no data behind after the run (a no-op with TEST_DATABASE_URL)."""
    if not os.environ.get("TEST_DATABASE_URL"):
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
