"""Liveness and readiness probes for orchestrators and tests.

``/healthz`` says the process serves requests; ``/readyz`` says it can mint tokens, which needs
the database (profiles) and LiveKit (the server the tokens are for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from livekit import api

from db.health import ping
from token_server.dependencies import LiveKit, Pool

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3.0
# A name no real room has: the call only proves LiveKit answers and accepts our API key.
_PROBE_ROOM = "voicedesk-readyz-probe"


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"error: no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        detail = str(exc).strip() or type(exc).__name__
        return f"error: {detail[:200]}"
    return "ok"


@router.get(
    "/readyz",
    summary="Database and LiveKit are reachable",
    responses={503: {"description": "a dependency is unreachable; the body names it"}},
)
async def readyz(pool: Pool, livekit: LiveKit) -> JSONResponse:
    database, lk = await asyncio.gather(
        _check(ping(pool, wait_seconds=CHECK_TIMEOUT_SECONDS)),
        _check(livekit.room.list_rooms(api.ListRoomsRequest(names=[_PROBE_ROOM]))),
    )
    checks = {"database": database, "livekit": lk}
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(checks, status_code=200 if ready else 503)
