"""Dispatch the agent while the caller is still connecting.

Joining a room with the caller's token dispatches the agent only once the caller is in: the
caller then waits for the job to start, the agent to join, load the profile and publish its
audio (1-2 s). Creating the room as the token is minted does all that while the client connects,
so the cached greeting plays as soon as the caller can hear it. The token keeps its own dispatch:
if this fails, joining still creates the room and dispatches the agent, only later.
"""

from __future__ import annotations

import asyncio
import logging

from livekit import api

from token_server.livekit_token import CallGrant, dispatch_metadata

log = logging.getLogger(__name__)

# A caller who never joins (microphone refused, tab closed): LiveKit closes the room after this,
# and the agent, which stops waiting sooner (CALLER_JOIN_TIMEOUT_SECONDS), has left by then.
ROOM_EMPTY_TIMEOUT_S = 120
# Longer than LiveKit answers in on any working deployment; the caller is waiting on this request.
CREATE_ROOM_TIMEOUT_S = 2.0


async def dispatch_early(livekit: api.LiveKitAPI, grant: CallGrant) -> bool:
    """Create ``grant.room`` with the agent dispatched; False (logged) when LiveKit did not answer."""
    request = api.CreateRoomRequest(
        name=grant.room,
        empty_timeout=ROOM_EMPTY_TIMEOUT_S,
        agents=[api.RoomAgentDispatch(agent_name=grant.agent_name, metadata=dispatch_metadata(grant))],
    )
    try:
        await asyncio.wait_for(livekit.room.create_room(request), CREATE_ROOM_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - the token's own dispatch still brings the agent
        log.warning("early dispatch for %s failed (%s); the agent joins with the caller", grant.room, exc)
        return False
    return True
