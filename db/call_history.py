"""Read side of the call record for operators: list, filter and search calls, and one call in full.

The agent writes ``calls``, ``call_turns`` and ``call_events`` (``db/calls.py``); this module only
reads them. Lists use keyset pagination on ``(started_at desc, id desc)`` so a page costs the same
however deep it is, and rows inserted meanwhile never shift a page (no duplicates, no gaps).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

# Keys the agent stores in call_turns.latency (milliseconds), summarised per call.
LATENCY_METRICS = ("e2e_ms", "llm_ttft_ms", "tts_ttfb_ms", "stt_ms", "end_of_utterance_ms")
# An operator query must not hold a connection for long: a runaway search is cut off.
STATEMENT_TIMEOUT = "5s"
# Match markers around hit words in snippets: plain text, so a UI never renders caller speech as HTML.
HEADLINE_OPTIONS = "StartSel=«, StopSel=», MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter= … "

_SUMMARY_COLUMNS = sql.SQL(
    """
    c.id, c.profile_id, p.display_name as caller_name, c.channel, c.direction, c.status,
    c.from_number, c.to_number,
    c.started_at, c.answered_at, c.ended_at, c.duration_seconds, c.end_reason, c.outcome,
    c.degraded, c.summary, (c.recording_path is not null) as has_recording
    """
)


class InvalidCursor(ValueError):
    """The pagination cursor was not one this server issued (or was altered)."""


@dataclass(frozen=True)
class CallPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(started_at: datetime, call_id: uuid.UUID) -> str:
    """Opaque to clients: the last row's sort key, so the next page starts right after it."""
    raw = json.dumps({"s": started_at.isoformat(), "i": str(call_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        started_at = datetime.fromisoformat(data["s"])
        call_id = uuid.UUID(data["i"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidCursor("not a cursor from a previous page of this list") from exc
    if started_at.tzinfo is None:
        raise InvalidCursor("not a cursor from a previous page of this list")
    return started_at, call_id


async def _bounded(conn: AsyncConnection) -> None:
    await conn.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT)))


async def list_calls(
    pool: AsyncConnectionPool,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    status: str | None = None,
    profile_id: uuid.UUID | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> CallPage:
    """Newest calls first, filtered; ``q`` keeps calls with a turn matching the web-style query.

    ``since`` is inclusive and ``until`` exclusive, both on ``started_at``. Raises
    :class:`InvalidCursor` for a cursor this function did not produce.
    """
    where: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit + 1}
    filters = {
        "since": ("c.started_at >= %(since)s", since),
        "until": ("c.started_at < %(until)s", until),
        "channel": ("c.channel = %(channel)s", channel),
        "status": ("c.status = %(status)s", status),
        "profile_id": ("c.profile_id = %(profile_id)s", profile_id),
    }
    for name, (condition, value) in filters.items():
        if value is not None:
            where.append(sql.SQL(condition))  # type: ignore[arg-type]  # constant SQL above
            params[name] = value
    if q is not None:
        where.append(
            sql.SQL(
                "exists (select 1 from call_turns t where t.call_id = c.id "
                "and t.fts @@ websearch_to_tsquery('english', %(q)s))"
            )
        )
        params["q"] = q
    if cursor is not None:
        params["after_started"], params["after_id"] = decode_cursor(cursor)
        where.append(sql.SQL("(c.started_at, c.id) < (%(after_started)s, %(after_id)s)"))
    query = sql.SQL(
        "select {columns} from calls c left join profiles p on p.id = c.profile_id {where} "
        "order by c.started_at desc, c.id desc limit %(limit)s"
    ).format(
        columns=_SUMMARY_COLUMNS,
        where=sql.SQL("where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
    )
    async with pool.connection() as conn, conn.transaction():
        await _bounded(conn)
        cur = await conn.execute(query, params)
        rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["started_at"], rows[-1]["id"])
    return CallPage(items=rows, next_cursor=next_cursor)


async def get_call_detail(pool: AsyncConnectionPool, call_id: uuid.UUID) -> dict[str, Any] | None:
    """One call with its turns (in order), events, summary, recording and latency metrics."""
    async with pool.connection() as conn, conn.transaction():
        await _bounded(conn)
        cur = await conn.execute(
            sql.SQL(
                "select {columns}, c.room_name, c.started_by, c.metadata, c.recording_path, "
                "c.recording_duration_seconds from calls c left join profiles p on p.id = c.profile_id "
                "where c.id = %s"
            ).format(columns=_SUMMARY_COLUMNS),
            (call_id,),
        )
        call = await cur.fetchone()
        if call is None:
            return None
        cur = await conn.execute(
            """
            select sequence, role, content, started_at, ended_at, interrupted, latency,
                   tool_name, tool_arguments, tool_result
            from call_turns where call_id = %s order by sequence
            """,
            (call_id,),
        )
        turns = await cur.fetchall()
        cur = await conn.execute(
            "select sequence, kind, detail, occurred_at from call_events "
            "where call_id = %s order by sequence",
            (call_id,),
        )
        events = await cur.fetchall()
        cur = await conn.execute(
            """
            select k.metric, count(v.value) as count,
                   percentile_cont(0.5) within group (order by v.value) as p50,
                   percentile_cont(0.95) within group (order by v.value) as p95,
                   avg(v.value) as mean, max(v.value) as max
            from call_turns t
            cross join unnest(%s::text[]) as k(metric)
            cross join lateral (
              select case when jsonb_typeof(t.latency -> k.metric) = 'number'
                          then (t.latency ->> k.metric)::double precision end as value
            ) v
            where t.call_id = %s
            group by k.metric
            """,
            (list(LATENCY_METRICS), call_id),
        )
        latency = {row["metric"]: row for row in await cur.fetchall()}
    call["turns"] = turns
    call["events"] = events
    call["metrics"] = {
        "turns": len(turns),
        "user_turns": sum(1 for t in turns if t["role"] == "user"),
        "assistant_turns": sum(1 for t in turns if t["role"] == "assistant"),
        "tool_turns": sum(1 for t in turns if t["role"] == "tool"),
        "interrupted_turns": sum(1 for t in turns if t["interrupted"]),
        "latency": {metric: _stats(latency.get(metric)) for metric in LATENCY_METRICS},
    }
    return call


def _stats(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """Latency figures of one metric, or None when no turn of the call measured it."""
    if row is None or not row["count"]:
        return None
    return {key: row[key] for key in ("count", "p50", "p95", "mean", "max")}


async def get_recording(pool: AsyncConnectionPool, call_id: uuid.UUID) -> dict[str, Any] | None:
    """The call's recording path and duration (both None without a recording), or None if no call."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select recording_path, recording_duration_seconds from calls where id = %s", (call_id,)
        )
        return await cur.fetchone()


async def get_call_state(pool: AsyncConnectionPool, call_id: uuid.UUID) -> dict[str, Any] | None:
    """The call's room, status and end time (None while it goes on), or None if there is no call."""
    async with pool.connection() as conn:
        cur = await conn.execute("select room_name, status, ended_at from calls where id = %s", (call_id,))
        return await cur.fetchone()


async def search_transcripts(pool: AsyncConnectionPool, q: str, limit: int = 20) -> list[dict[str, Any]]:
    """Turns matching ``q`` (web-search syntax: words, "phrases", -not, or), best match first."""
    async with pool.connection() as conn, conn.transaction():
        await _bounded(conn)
        cur = await conn.execute(
            """
            with query as (select websearch_to_tsquery('english', %(q)s) as tsq)
            select t.call_id, t.sequence, t.role, t.started_at, c.started_at as call_started_at,
                   c.channel, p.display_name as caller_name,
                   ts_headline('english', t.content, query.tsq, %(options)s) as snippet,
                   ts_rank_cd(t.fts, query.tsq) as rank
            from query, call_turns t
            join calls c on c.id = t.call_id
            left join profiles p on p.id = c.profile_id
            where t.fts @@ query.tsq
            order by rank desc, c.started_at desc, t.call_id, t.sequence
            limit %(limit)s
            """,
            {"q": q, "options": HEADLINE_OPTIONS, "limit": limit},
        )
        return await cur.fetchall()
