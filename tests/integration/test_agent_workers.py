"""The `agent_workers` table on real Postgres: what a full worker sees when it asks for room elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from psycopg_pool import AsyncConnectionPool

from db import agent_workers
from db.pool import open_pool
from tests.support.postgres import drop_database, fresh_database


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    url = fresh_database()
    yield url
    drop_database(url)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, max_size=2)
    async with pool.connection() as conn:
        await conn.execute("delete from agent_workers")
    yield pool
    await pool.close()


async def test_room_elsewhere_counts_only_live_other_workers_with_room(pool: AsyncConnectionPool) -> None:
    me, other = "host-a:1", "host-b:1"
    await agent_workers.report(pool, me, "voicedesk", calls=2, max_calls=2, draining=False)
    assert not await agent_workers.another_has_room(pool, me, "voicedesk")  # alone, and full

    await agent_workers.report(pool, other, "voicedesk", calls=1, max_calls=2, draining=False)
    assert await agent_workers.another_has_room(pool, me, "voicedesk")
    assert not await agent_workers.another_has_room(pool, me, "other-agent")  # another pool

    await agent_workers.report(pool, other, "voicedesk", calls=2, max_calls=2, draining=False)
    assert not await agent_workers.another_has_room(pool, me, "voicedesk")  # it filled up

    await agent_workers.report(pool, other, "voicedesk", calls=0, max_calls=2, draining=True)
    assert not await agent_workers.another_has_room(pool, me, "voicedesk")  # stopping: takes nothing

    await agent_workers.report(pool, other, "voicedesk", calls=0, max_calls=2, draining=False)
    async with pool.connection() as conn:  # a worker that stopped reporting is gone
        await conn.execute(
            "update agent_workers set seen_at = now() - interval '1 minute' where id = %s", (other,)
        )
    assert not await agent_workers.another_has_room(pool, me, "voicedesk")

    await agent_workers.forget(pool, me)
    async with pool.connection() as conn:
        cur = await conn.execute("select id from agent_workers order by id")
        assert [r["id"] for r in await cur.fetchall()] == [other]


async def test_bad_rows_are_refused(pool: AsyncConnectionPool) -> None:
    with pytest.raises(Exception, match="check"):
        await agent_workers.report(pool, "host:1", "voicedesk", calls=-1, max_calls=2, draining=False)
