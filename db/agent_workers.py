"""The `agent_workers` table: each worker's calls in hand, so a full worker can see if another has room."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

FRESH_SECONDS = 5.0  # a row not refreshed for this long belongs to a worker that is gone
FORGET_AFTER = "1 hour"


async def report(
    pool: AsyncConnectionPool, worker_id: str, agent_name: str, *, calls: int, max_calls: int, draining: bool
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into agent_workers (id, agent_name, calls, max_calls, draining)
            values (%s, %s, %s, %s, %s)
            on conflict (id) do update set agent_name = excluded.agent_name, calls = excluded.calls,
              max_calls = excluded.max_calls, draining = excluded.draining, seen_at = now()
            """,
            (worker_id, agent_name, calls, max_calls, draining),
        )


async def another_has_room(pool: AsyncConnectionPool, worker_id: str, agent_name: str) -> bool:
    """Is any other live, non-draining worker for ``agent_name`` below its WORKER_MAX_CALLS?"""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            select exists (
              select 1 from agent_workers
              where agent_name = %s and id <> %s and not draining and calls < max_calls
                and seen_at > now() - make_interval(secs => %s)
            ) as room
            """,
            (agent_name, worker_id, FRESH_SECONDS),
        )
        row = await cur.fetchone()
    return bool(row and row["room"])


async def forget(pool: AsyncConnectionPool, worker_id: str) -> None:
    """Drop this worker's row, and rows of workers long gone."""
    async with pool.connection() as conn:
        await conn.execute(
            f"delete from agent_workers where id = %s or seen_at < now() - interval '{FORGET_AFTER}'",
            (worker_id,),
        )
