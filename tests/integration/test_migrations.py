"""The migrations on a real Postgres with pgvector: idempotent runner, constraints, RLS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from db.migrations import apply_migrations, apply_seed, discover
from tests.support.postgres import drop_database, fresh_database


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    url = fresh_database()
    yield url
    drop_database(url)


def test_migrations_apply_once_and_are_recorded_like_supabase(db_url: str) -> None:
    assert apply_migrations(db_url) == []  # already applied by fresh_database: nothing twice
    assert apply_migrations(db_url) == []
    with psycopg.connect(db_url) as conn:
        versions = [
            r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations order by 1")
        ]
    assert versions == [m.version for m in discover()]


def test_seed_is_idempotent(db_url: str) -> None:
    apply_seed(db_url)
    apply_seed(db_url)
    with psycopg.connect(db_url) as conn:
        (count,) = conn.execute("select count(*) from profiles where firebase_uid = 'demo-user'").fetchone()  # type: ignore[misc]
    assert count == 1


def test_every_table_has_row_level_security(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select relname, relrowsecurity from pg_class"
            " where relnamespace = 'public'::regnamespace and relkind = 'r'"
        ).fetchall()
    assert {"profiles", "user_settings", "calls", "call_turns"} <= {name for name, _ in rows}
    assert all(rls for _, rls in rows), rows


def test_turns_are_unique_per_call_and_sequence(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        call_id = uuid.uuid4()
        conn.execute(
            "insert into calls (id, channel, direction, room_name) values (%s, 'web', 'inbound', 'r')",
            (call_id,),
        )
        conn.execute(
            "insert into call_turns (call_id, sequence, role, content) values (%s, 0, 'user', 'hi')",
            (call_id,),
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "insert into call_turns (call_id, sequence, role, content) values (%s, 0, 'user', 'again')",
                (call_id,),
            )


def test_bad_values_are_refused_by_the_schema(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into profiles (firebase_uid, phone_e164) values ('x', '555-0100')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into calls (channel, direction, room_name) values ('fax', 'inbound', 'r')")


def test_rls_shows_a_signed_in_user_only_their_own_rows(db_url: str) -> None:
    """The Supabase third-party-auth shape: the Firebase uid is the JWT's `sub`."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        mine, theirs = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            "insert into profiles (id, firebase_uid) values (%s, 'uid-me'), (%s, 'uid-them')", (mine, theirs)
        )
        conn.execute(
            "insert into calls (channel, direction, room_name, profile_id) values "
            "('web', 'inbound', 'mine', %s), ('web', 'inbound', 'theirs', %s)",
            (mine, theirs),
        )
        with conn.transaction():
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)", ('{"sub": "uid-me"}',))
            profiles = conn.execute("select firebase_uid from profiles").fetchall()
            rooms = conn.execute("select room_name from calls").fetchall()
            updated = conn.execute(
                "update profiles set display_name = 'x' where firebase_uid = 'uid-them'"
            ).rowcount
    assert profiles == [("uid-me",)]
    assert rooms == [("mine",)]
    assert updated == 0
