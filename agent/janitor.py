"""Close calls nobody is serving any more: the agent's process died and the room is gone.

A killed worker never writes its call's end, so without this the call would stay
`in_progress` (or an outbound call `pending` or `ringing`) forever and look live to operators.
A room that still exists is left alone: LiveKit restarts a failed job there and the new job
continues the same call record.
"""

from __future__ import annotations

import logging
import time

from livekit import api
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("voicedesk.agent.janitor")

MIN_AGE_S = 30  # a call this young may still be joining its room
# A job that ends its call itself deletes the room first and writes the end after the recording
# upload and the summary; on a busy host that takes a while, so a room must stay gone this long.
ROOM_GONE_GRACE_S = 30.0


async def close_orphaned_calls(
    pool: AsyncConnectionPool,
    livekit: api.LiveKitAPI,
    pending: set[str],
    gone_since: dict[str, float] | None = None,
) -> int:
    """Close live calls whose room no longer exists; ``pending`` call ids still have a
    journal to replay, so their own end may yet arrive and is not guessed. With ``gone_since``
    (kept by the caller across sweeps) a call is closed only once its room has been missing
    for ``ROOM_GONE_GRACE_S``."""
    rooms = {room.name for room in (await livekit.room.list_rooms(api.ListRoomsRequest())).rooms}
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            select c.id::text as id from calls c
            where c.status in ('pending', 'ringing', 'in_progress') and c.ended_at is null
              and c.started_at < now() - make_interval(secs => %s)
              and not (c.room_name = any(%s)) and not (c.id::text = any(%s))
            """,
            (MIN_AGE_S, list(rooms), list(pending)),
        )
        missing = {row["id"] for row in await cur.fetchall()}
        due = list(missing)
        if gone_since is not None:
            now = time.monotonic()
            for call_id in set(gone_since) - missing:
                del gone_since[call_id]
            due = [c for c in missing if now - gone_since.setdefault(c, now) >= ROOM_GONE_GRACE_S]
        if not due:
            return 0
        cur = await conn.execute(
            """
            update calls c set status = 'failed', end_reason = 'agent_lost', degraded = true,
                   ended_at = coalesce((select max(coalesce(t.ended_at, t.started_at))
                                        from call_turns t where t.call_id = c.id), c.started_at)
            where c.id::text = any(%s) and c.ended_at is null
            returning c.id
            """,
            (due,),
        )
        closed = [row["id"] for row in await cur.fetchall()]
    for call_id in closed:
        logger.warning("closed call %s: its agent is gone and so is its room", call_id)
    return len(closed)
