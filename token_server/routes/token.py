"""``POST /token``: LiveKit's token-source endpoint, so ``TokenSource.endpoint(...)`` works unchanged.

The signed-in Firebase user gets a token for a fresh room that dispatches the agent; identity,
room and dispatch metadata are the server's decision, never the client's.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError

from token_server.auth import CurrentUser
from token_server.caller_profile import ensure_caller_profile
from token_server.dependencies import LiveKit, Pool, Settings
from token_server.early_dispatch import dispatch_early
from token_server.livekit_token import CallGrant, mint, new_call
from token_server.token_request import TokenRequest, TokenResponse

log = logging.getLogger(__name__)

router = APIRouter(tags=["token"])


def _refuse(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    """A 422 shaped like pydantic's own errors, so clients see one format for every refusal."""
    error = {"type": "value_error", "loc": ("body", *loc), "msg": msg, "input": value}
    return RequestValidationError([error])


@router.post(
    "/token",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResponse,
    summary="Mint a LiveKit participant token for a new call with the agent",
    responses={403: {"description": "REQUIRE_VERIFIED_EMAIL is on and the email is not verified"}},
)
async def create_token(
    user: CurrentUser,
    settings: Settings,
    pool: Pool,
    livekit: LiveKit,
    response: Response,
    body: Annotated[TokenRequest | None, Body()] = None,
) -> TokenResponse:
    request = body or TokenRequest()
    if request.participant_identity and request.participant_identity != user.uid:
        raise _refuse(
            ("participant_identity",),
            "identity comes from your sign-in; omit participant_identity",
            request.participant_identity,
        )
    agent_name = request.requested_agent() or settings.agent_name
    if agent_name not in settings.allowed_agent_names:
        raise _refuse(
            ("room_config", "agents", 0, "agent_name"),
            f"agent {agent_name!r} is not available; allowed: {', '.join(settings.allowed_agent_names)}",
            agent_name,
        )

    if settings.require_verified_email and user.claims.get("email_verified") is not True:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "verify your email address before calling: open the link we emailed you, then sign in again",
        )

    profile = await ensure_caller_profile(pool, user)  # after the checks: a refused request stores nothing

    call_id, room = new_call()
    grant = CallGrant(
        identity=user.uid,
        room=room,
        call_id=call_id,
        agent_name=agent_name,
        profile_id=profile.id,
        name=request.participant_name or profile.display_name or "",
        metadata=request.participant_metadata or "",
        attributes=request.participant_attributes,
    )
    if settings.early_dispatch:
        await dispatch_early(livekit, grant)
    log.info("minted token uid=%s room=%s call_id=%s agent=%s", user.uid, room, call_id, agent_name)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(server_url=settings.livekit_url, participant_token=mint(settings, grant))
