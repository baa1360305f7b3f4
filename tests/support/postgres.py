"""A real Postgres with pgvector for tests: the embedded server, or TEST_DATABASE_URL if given."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg

from db.embedded import start_embedded
from db.migrations import apply_migrations


def fresh_database(data_dir: Path) -> str:
    """Start the embedded server and create a new, migrated database for this test session."""
    admin_url = os.environ.get("TEST_DATABASE_URL") or start_embedded(data_dir)
    name = f"voicedesk_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')  # type: ignore[arg-type]
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    apply_migrations(url)
    return url
