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
CallStatus = Literal["pending", "ringing", "in_progress", "completed", "failed", "no_answer", "busy"]


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
    started_at: datetime,
    status: CallStatus = "in_progress",
    from_number: str | None = None,
    to_number: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> int:
    """Record that the agent is in the call; return the next free turn/event sequence.

    Idempotent: a replayed or restarted job keeps the first start and continues the numbering.
    An outbound call starts ``ringing`` (its row may already exist, made by the operator API)
    and is answered later, through :func:`set_status`.
    """
    direction = "outbound" if channel == "pstn_outbound" else "inbound"
    answered_at = started_at if status == "in_progress" else None
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into calls (id, profile_id, channel, direction, status, room_name, started_by,
                               started_at, answered_at, from_number, to_number, metadata)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (id) do update set
                answered_at = coalesce(calls.answered_at, excluded.answered_at),
                profile_id = coalesce(calls.profile_id, excluded.profile_id),
                from_number = coalesce(calls.from_number, excluded.from_number),
                to_number = coalesce(calls.to_number, excluded.to_number),
                status = case when calls.ended_at is null and calls.status = 'pending'
                              then excluded.status else calls.status end
            """,
            (
                call_id,
                profile_id,
                channel,
                direction,
                status,
                room_name,
                started_by,
                started_at,
                answered_at,
                from_number,
                to_number,
                Jsonb(metadata or {}),
            ),
        )
        cur = await conn.execute(
            """
            select greatest(
                (select coalesce(max(sequence) + 1, 0) from call_turns where call_id = %s),
                (select coalesce(max(sequence) + 1, 0) from call_events where call_id = %s)) as next_sequence
            """,
            (call_id, call_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["next_sequence"])


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


async def add_event(
    pool: AsyncConnectionPool,
    *,
    call_id: uuid.UUID,
    sequence: int,
    kind: str,
    detail: dict[str, Any],
    occurred_at: datetime,
) -> None:
    """Store an event once: replaying the same (call, sequence) changes nothing."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into call_events (call_id, sequence, kind, detail, occurred_at)
            values (%s, %s, %s, %s, %s) on conflict (call_id, sequence) do nothing
            """,
            (call_id, sequence, kind, Jsonb(detail), occurred_at),
        )


async def complete_call(
    pool: AsyncConnectionPool,
    call_id: uuid.UUID,
    *,
    end_reason: str,
    ended_at: datetime,
    status: str = "completed",
    degraded: bool = False,
) -> None:
    """Close the call once, at the time it really ended (a replay may come much later)."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            update calls set status = %s, end_reason = %s, ended_at = %s, degraded = degraded or %s
            where id = %s and ended_at is null
            """,
            (status, end_reason, ended_at, degraded, call_id),
        )


async def set_status(
    pool: AsyncConnectionPool, call_id: uuid.UUID, status: CallStatus, *, at: datetime
) -> None:
    """Follow a live call (ringing, then answered); a call that has ended keeps its final state."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            update calls set status = %s,
                answered_at = case when %s = 'in_progress' then coalesce(answered_at, %s) else answered_at end
            where id = %s and ended_at is null
            """,
            (status, status, at, call_id),
        )


async def count_live_calls(pool: AsyncConnectionPool, channel: Channel, *, besides: uuid.UUID) -> int:
    """Calls of ``channel`` still going on, not counting ``besides`` (the one asking)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) as n from calls where channel = %s and ended_at is null and id <> %s"
            " and started_at > now() - interval '1 day'",  # a row a crash left open must not block forever
            (channel, besides),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def create_outbound_call(
    pool: AsyncConnectionPool,
    *,
    call_id: uuid.UUID,
    room_name: str,
    to_number: str,
    started_by: str,
    purpose: str,
) -> None:
    """The operator API's row for a call not yet dialled: the agent takes it over when dispatched."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            insert into calls (id, channel, direction, status, room_name, started_by, to_number, metadata)
            values (%s, 'pstn_outbound', 'outbound', 'pending', %s, %s, %s, %s)
            """,
            (call_id, room_name, started_by, to_number, Jsonb({"purpose": purpose})),
        )


async def fail_call(pool: AsyncConnectionPool, call_id: uuid.UUID, *, end_reason: str) -> None:
    """A call that could not even start (e.g. the agent could not be dispatched)."""
    async with pool.connection() as conn:
        await conn.execute(
            "update calls set status = 'failed', end_reason = %s, ended_at = now() where id = %s"
            " and ended_at is null",
            (end_reason, call_id),
        )


async def set_recording(pool: AsyncConnectionPool, call_id: uuid.UUID, path: str, duration_s: float) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "update calls set recording_path = %s, recording_duration_seconds = %s where id = %s",
            (path, duration_s, call_id),
        )


async def set_summary(
    pool: AsyncConnectionPool, call_id: uuid.UUID, summary: str | None, outcome: str | None
) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "update calls set summary = coalesce(%s, summary), outcome = coalesce(%s, outcome) where id = %s",
            (summary, outcome, call_id),
        )
