"""``POST /calls/{call_id}/monitor``: an operator listens in on a live call.

Operators only. The token joins the call's room hidden (the caller and the agent do not see it),
subscribes to the audio and publishes nothing, so monitoring cannot change the call. It dispatches
no agent: the room already has one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from db import call_history
from token_server.dependencies import Pool, Settings
from token_server.livekit_token import mint_monitor, monitor_identity
from token_server.operators import Operator
from token_server.routes.calls import (
    CallId,
    ErrorResponse,
    database_errors,
    reject_unknown_query_parameters,
)
from token_server.token_request import TokenResponse

log = logging.getLogger(__name__)

# What a call is while it goes on; every other status is final.
LIVE_STATUSES = frozenset({"pending", "ringing", "in_progress"})

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no valid Firebase ID token"},
    403: {"model": ErrorResponse, "description": "signed in, but not an operator"},
    404: {"model": ErrorResponse, "description": "no such call"},
    409: {"model": ErrorResponse, "description": "the call has ended; there is nothing to listen to"},
    503: {"model": ErrorResponse, "description": "database unavailable; retry"},
}

router = APIRouter(
    prefix="/calls",
    tags=["operator: calls"],
    dependencies=[Depends(reject_unknown_query_parameters)],
)


@router.post(
    "/{call_id}/monitor",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResponse,
    summary="Listen in on a live call",
    description="Operators only. Returns a short-lived LiveKit token (TOKEN_TTL_SECONDS) for the "
    "call's room: hidden, subscribe-only (no audio, video or data published). Connect with any "
    "LiveKit client SDK to hear the caller and the agent.",
    responses=_RESPONSES,
)
async def monitor_call(
    operator: Operator, pool: Pool, settings: Settings, call_id: CallId, response: Response
) -> TokenResponse:
    async with database_errors():
        call = await call_history.get_call_state(pool, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id}")
    if call["ended_at"] is not None or call["status"] not in LIVE_STATUSES:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"call {call_id} has ended ({call['status']}); nothing to monitor"
        )
    identity = monitor_identity(operator.uid)
    token = mint_monitor(settings, identity=identity, room=call["room_name"], name=operator.name or "")
    log.info("operator uid=%s monitors call %s as %s", operator.uid, call_id, identity)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(server_url=settings.livekit_url, participant_token=token)
