"""Steps every end-to-end web call shares: sign in, get a token, join, and read the stored call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from livekit import api
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.firebase_emulator import SignedUpUser
from tests.support.rtc_caller import Caller


async def join_call(
    token_server_url: str, user: SignedUpUser, api_key: str, api_secret: str, *, agent: str | None = None
) -> tuple[Caller, str]:
    """POST /token as ``user`` (asking for ``agent`` if given) and join the new room."""
    body = {"room_config": {"agents": [{"agent_name": agent}]}} if agent else {}
    async with httpx.AsyncClient(base_url=token_server_url, timeout=10) as http:
        resp = await http.post("/token", json=body, headers={"Authorization": f"Bearer {user.id_token}"})
    assert resp.status_code == 201, resp.text
    token = resp.json()
    room_name = api.TokenVerifier(api_key, api_secret).verify(token["participant_token"]).video.room
    caller = Caller()
    await caller.connect(token["server_url"], token["participant_token"])
    return caller, room_name


def completed(row: dict[str, Any]) -> bool:
    return row["status"] == "completed"


def summarized(row: dict[str, Any]) -> bool:
    """The summary is the last thing the agent writes after a call."""
    return row["summary"] is not None


async def stored_call(
    database_url: str,
    room_name: str,
    *,
    ready: Callable[[dict[str, Any]], bool] = completed,
    within: float = 20,
) -> dict[str, Any]:
    """The `calls` row of the room once ``ready(row)`` holds (or its last state on timeout)."""
    row = None
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        for _ in range(int(within / 0.25)):
            async with pool.connection() as conn:
                cur = await conn.execute("select * from calls where room_name = %s", (room_name,))
                row = await cur.fetchone()
            if row and ready(row):
                break
            await asyncio.sleep(0.25)
    assert row is not None, f"no calls row for room {room_name}"
    return row


async def stored_turns(database_url: str, call_id: Any) -> list[dict[str, Any]]:
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select * from call_turns where call_id = %s order by sequence", (call_id,)
            )
            return await cur.fetchall()


async def stored_events(database_url: str, call_id: Any) -> list[dict[str, Any]]:
    async with AsyncConnectionPool(database_url, kwargs={"row_factory": dict_row}, open=False) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select * from call_events where call_id = %s order by sequence", (call_id,)
            )
            return await cur.fetchall()
