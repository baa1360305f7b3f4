"""Readiness probe for the database."""

from psycopg_pool import AsyncConnectionPool


async def ping(pool: AsyncConnectionPool, wait_seconds: float = 2.0) -> None:
    """Raise when no connection answers within ``wait_seconds`` (readiness must answer fast)."""
    async with pool.connection(timeout=wait_seconds) as conn:
        await conn.execute("select 1")
