"""Close calls nobody is serving any more: the agent's process died and the room is gone.

A killed worker never writes its call's end, so without this the call would stay
`in_progress` (or an outbound call `pending` or `ringing`) forever and look live to operators.
A room that still exists is left alone: LiveKit restarts a failed job there and the new job
continues the same call record.
"""

from __future__ import annotations

import logging

from livekit import api
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("voicedesk.agent.janitor")

MIN_AGE_S = 30  # a call this young may still be joining its room


async def close_orphaned_calls(pool: AsyncConnectionPool, livekit: api.LiveKitAPI, pending: set[str]) -> int:
    """Close live calls whose room no longer exists; ``pending`` call ids still have a
    journal to replay, so their own end may yet arrive and is not guessed."""
    rooms = {room.name for room in (await livekit.room.list_rooms(api.ListRoomsRequest())).rooms}
    async with pool.connection() as conn:
        cur = await conn.execute(
            """
            update calls c set status = 'failed', end_reason = 'agent_lost', degraded = true,
                   ended_at = coalesce((select max(coalesce(t.ended_at, t.started_at))
                                        from call_turns t where t.call_id = c.id), c.started_at)
            where c.status in ('pending', 'ringing', 'in_progress') and c.ended_at is null
              and c.started_at < now() - make_interval(secs => %s)
              and not (c.room_name = any(%s)) and not (c.id::text = any(%s))
            returning c.id
            """,
            (MIN_AGE_S, list(rooms), list(pending)),
        )
        closed = [row["id"] for row in await cur.fetchall()]
    for call_id in closed:
        logger.warning("closed call %s: its agent is gone and so is its room", call_id)
    return len(closed)
