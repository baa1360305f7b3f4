"""The async connection pool: psycopg 3 with pgvector types registered on every connection."""

from __future__ import annotations

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


async def _configure(conn: AsyncConnection) -> None:
    # Supabase keeps extensions in the `extensions` schema; plain Postgres gets the same layout
    # from the first migration. Before migrations ran there is no `vector` type yet.
    await conn.execute("set search_path to public, extensions")
    try:
        await register_vector_async(conn)
    except Exception:  # noqa: BLE001 - vector not installed yet: the migration runner adds it
        await conn.rollback()
    await conn.commit()


async def open_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, wait: bool = True
) -> AsyncConnectionPool:
    """Open a pool. ``wait`` fails start-up fast on a bad URL; a live call passes False instead."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": True},
        configure=_configure,
        # Verify a connection before handing it out: after a database restart the pool would
        # otherwise give out dead connections first.
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="voicedesk",
    )
    await pool.open(wait=wait, timeout=15)
    return pool
