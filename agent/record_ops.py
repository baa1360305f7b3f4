"""Call-record writes as plain JSON operations, so a write can wait in the on-disk journal.

The live writer and the journal replayer apply the same operations; every one is idempotent
(turns and events on (call, sequence), the call's start and end once, statuses until the end),
so a replay after a partial success stores nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from db import calls, profiles

Op = dict[str, Any]


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


async def apply(pool: AsyncConnectionPool, op: Op) -> int | None:
    """Apply one operation; `start` returns the next free sequence of the call."""
    call_id = _uuid(op["call_id"])
    assert call_id is not None
    kind = op["op"]
    if kind == "start":
        return await calls.start_call(
            pool,
            call_id=call_id,
            channel=op["channel"],
            room_name=op["room_name"],
            profile_id=_uuid(op.get("profile_id")),
            started_by=op.get("started_by"),
            started_at=_time(op["started_at"]),  # type: ignore[arg-type]
            status=op.get("status", "in_progress"),
            from_number=op.get("from_number"),
            to_number=op.get("to_number"),
        )
    if kind == "status":
        await calls.set_status(pool, call_id, op["status"], at=_time(op["at"]))  # type: ignore[arg-type]
    elif kind == "turn":
        await calls.add_turn(
            pool,
            calls.Turn(
                call_id=call_id,
                sequence=op["sequence"],
                role=op["role"],
                content=op["content"],
                started_at=_time(op.get("started_at")),
                ended_at=_time(op.get("ended_at")),
                interrupted=op.get("interrupted", False),
                latency=op.get("latency") or {},
                tool_name=op.get("tool_name"),
                tool_arguments=op.get("tool_arguments"),
                tool_result=op.get("tool_result"),
            ),
        )
    elif kind == "event":
        await calls.add_event(
            pool,
            call_id=call_id,
            sequence=op["sequence"],
            kind=op["kind"],
            detail=op.get("detail") or {},
            occurred_at=_time(op["occurred_at"]),  # type: ignore[arg-type]
        )
    elif kind == "complete":
        await calls.complete_call(
            pool,
            call_id,
            end_reason=op["end_reason"],
            ended_at=_time(op["ended_at"]),  # type: ignore[arg-type]
            status=op.get("status", "completed"),
            degraded=op.get("degraded", False),
        )
    elif kind == "summary":
        await calls.set_summary(pool, call_id, op.get("summary"), op.get("outcome"))
        if op.get("summary") and (profile_id := _uuid(op.get("profile_id"))):
            await profiles.remember_last_interaction(pool, profile_id, op["summary"])
    elif kind == "recording":
        await calls.set_recording(pool, call_id, op["path"], op["duration_s"])
    else:
        raise ValueError(f"unknown call-record operation {kind!r}")
    return None
