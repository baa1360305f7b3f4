"""Repository for `calls` and `call_turns`: the record of every conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

Channel = Literal["web", "pstn_inbound", "pstn_outbound"]
Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True)
class Turn:
    """One stored turn; ``sequence`` orders turns within a call and makes writes idempotent."""

    call_id: uuid.UUID
    sequence: int
    role: Role
    content: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    interrupted: bool = False
    latency: dict[str, float] = field(default_factory=dict)
    tool_name: str | None = None
    tool_arguments: Any = None
    tool_result: Any = None


async def start_call(
    pool: AsyncConnectionPool,
    *,
    call_id: uuid.UUID,
    channel: Channel,
    room_name: str,
    profile_id: uuid.UUID | None,
    started_by: str | None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Record that the agent is in the call. Idempotent: a restarted job keeps the first start."""
    direction = "outbound" if channel == "pstn_outbound" else "inbound"
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into calls (id, profile_id, channel, direction, status, room_name, started_by,
                               answered_at, metadata)
            values (%s, %s, %s, %s, 'in_progress', %s, %s, now(), %s)
            on conflict (id) do update set status = 'in_progress',
                answered_at = coalesce(calls.answered_at, excluded.answered_at)
            """,
            (call_id, profile_id, channel, direction, room_name, started_by, Jsonb(metadata or {})),
        )


async def add_turn(pool: AsyncConnectionPool, turn: Turn) -> None:
    """Store a turn once: replaying the same (call, sequence) changes nothing."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into call_turns (call_id, sequence, role, content, started_at, ended_at,
                                    interrupted, latency, tool_name, tool_arguments, tool_result)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (call_id, sequence) do nothing
            """,
            (
                turn.call_id,
                turn.sequence,
                turn.role,
                turn.content,
                turn.started_at,
                turn.ended_at,
                turn.interrupted,
                Jsonb(turn.latency),
                turn.tool_name,
                None if turn.tool_arguments is None else Jsonb(turn.tool_arguments),
                None if turn.tool_result is None else Jsonb(turn.tool_result),
            ),
        )


async def complete_call(
    pool: AsyncConnectionPool, call_id: uuid.UUID, *, end_reason: str, status: str = "completed"
) -> None:
    """Close the call once; the duration is derived by the database from the timestamps."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            update calls set status = %s, end_reason = %s, ended_at = now()
            where id = %s and ended_at is null
            """,
            (status, end_reason, call_id),
        )


async def set_summary(pool: AsyncConnectionPool, call_id: uuid.UUID, summary: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("update calls set summary = %s where id = %s", (summary, call_id))


async def get_call(pool: AsyncConnectionPool, call_id: uuid.UUID | str) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cur = await conn.execute("select * from calls where id = %s", (call_id,))
        return await cur.fetchone()


async def list_turns(pool: AsyncConnectionPool, call_id: uuid.UUID | str) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute("select * from call_turns where call_id = %s order by sequence", (call_id,))
        return await cur.fetchall()
