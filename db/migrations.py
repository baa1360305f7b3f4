"""Apply `supabase/migrations/*.sql` in order, once each.

Applied versions are recorded in `supabase_migrations.schema_migrations`, the table the Supabase
CLI uses, so this runner and `supabase db push` agree on what a database already has.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

logger = logging.getLogger("voicedesk.db.migrations")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "supabase" / "migrations"
SEED_FILE = MIGRATIONS_DIR.parent / "seed.sql"
_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[\w-]+)\.sql$")
_LOCK_KEY = 0x766F696365  # "voice": one runner at a time per database


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must be <version>_<name>.sql: {path.name}")
        found.append(Migration(match["version"], match["name"], path))
    return found


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("create schema if not exists supabase_migrations")
            conn.execute(
                "create table if not exists supabase_migrations.schema_migrations "
                "(version text primary key, statements text[], name text)"
            )
            done = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
            for migration in discover(directory):
                if migration.version in done:
                    continue
                sql = migration.path.read_text()
                with conn.transaction():
                    conn.execute(sql)  # type: ignore[arg-type]  # trusted file from the repository
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, statements, name) "
                        "values (%s, %s, %s)",
                        (migration.version, [sql], migration.name),
                    )
                logger.info("applied migration %s_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def apply_seed(database_url: str, seed_file: Path = SEED_FILE) -> None:
    """Load the demo data (idempotent statements only)."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(seed_file.read_text())  # type: ignore[arg-type]
