"""`POST /calls`: an operator has the agent phone a customer.

The call's row is written first (status ``pending``), then its room is created with the agent
dispatched into it; the agent dials and keeps the row up to date (ringing, answered, no answer,
busy, failed). The response comes back at once: follow the call with ``GET /calls/{id}``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from livekit import api
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from db import calls
from token_server.dependencies import LiveKit, Pool, Settings
from token_server.livekit_token import new_call
from token_server.operators import Operator
from token_server.routes.calls import ErrorResponse, database_errors
from voicedesk import e164

log = logging.getLogger(__name__)

ROOM_EMPTY_TIMEOUT_S = 120  # the agent joins within seconds; a room nobody joined goes away

router = APIRouter(prefix="/calls", tags=["operator: calls"])


class OutboundCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    phone_number: str = Field(
        pattern=e164.PATTERN, description="Number to call, E.164", examples=["+15551234567"]
    )
    purpose: str = Field(
        min_length=1,
        max_length=500,
        description="Why we call; the agent says it when the callee answers",
        examples=["your renewal next week"],
    )


class OutboundCallStarted(BaseModel):
    call_id: uuid.UUID
    room_name: str
    status: Literal["pending"] = "pending"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutboundCallStarted,
    summary="Have the agent call a number",
    description="Operators only. Returns at once with the call's id; the call then rings, and is "
    "answered or ends as no_answer, busy or failed (see `GET /calls/{id}`).",
    responses={
        401: {"model": ErrorResponse, "description": "no valid Firebase ID token"},
        403: {"model": ErrorResponse, "description": "not an operator"},
        503: {"model": ErrorResponse, "description": "database or LiveKit unavailable; nothing was dialled"},
    },
)
async def start_outbound_call(
    body: OutboundCallRequest,
    operator: Operator,
    pool: Pool,
    settings: Settings,
    livekit: LiveKit,
    response: Response,
) -> OutboundCallStarted:
    call_id, room_name = new_call()
    async with database_errors():
        await calls.create_outbound_call(
            pool,
            call_id=call_id,
            room_name=room_name,
            to_number=body.phone_number,
            started_by=operator.uid,
            purpose=body.purpose,
        )
    metadata = json.dumps(
        {
            "channel": "pstn_outbound",
            "call_id": str(call_id),
            "phone_number": body.phone_number,
            "purpose": body.purpose,
        }
    )
    try:
        await livekit.room.create_room(
            api.CreateRoomRequest(
                name=room_name,
                empty_timeout=ROOM_EMPTY_TIMEOUT_S,
                agents=[api.RoomAgentDispatch(agent_name=settings.agent_name, metadata=metadata)],
            )
        )
    except Exception as exc:  # noqa: BLE001 - any LiveKit failure: the call is not placed
        log.warning("could not create the room for outbound call %s: %s", call_id, exc)
        try:  # a request that timed out may still have created the room: make sure nobody dials
            await livekit.room.delete_room(api.DeleteRoomRequest(room=room_name))
        except Exception:  # noqa: BLE001 - unreachable or no such room: nothing was dispatched
            log.debug("no room %s to remove", room_name)
        async with database_errors():
            await calls.fail_call(pool, call_id, end_reason="dispatch_failed")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "LiveKit unavailable; nothing was dialled"
        ) from None
    log.info("operator uid=%s placed outbound call %s", operator.uid, call_id)
    response.headers["Location"] = f"/calls/{call_id}"
    return OutboundCallStarted(call_id=call_id, room_name=room_name)
