"""Mint LiveKit participant tokens: a caller's (one room, one identity, one agent dispatch) and an
operator's listen-only monitoring token for a live call."""

from __future__ import annotations

import datetime
import json
import secrets
import uuid
from dataclasses import dataclass

from livekit import api

from token_server.settings import TokenServerSettings


@dataclass(frozen=True)
class CallGrant:
    """What the server decided for this call; every field is server-chosen."""

    identity: str
    room: str
    call_id: uuid.UUID
    agent_name: str
    profile_id: uuid.UUID
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] | None = None


def new_call() -> tuple[uuid.UUID, str]:
    """A fresh call id and its room: a room per call, so no one can join an existing room."""
    call_id = uuid.uuid4()
    return call_id, f"call-{call_id}"


def dispatch_metadata(grant: CallGrant) -> str:
    """The job metadata the agent reads (see DESIGN.md, Agent dispatch)."""
    return json.dumps(
        {
            "channel": "web",
            "profile_id": str(grant.profile_id),
            "call_id": str(grant.call_id),
            "firebase_uid": grant.identity,
        }
    )


def _access_token(settings: TokenServerSettings, identity: str) -> api.AccessToken:
    """A token signed with our key for ``identity``, valid for TOKEN_TTL_SECONDS."""
    return (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
        .with_identity(identity)
        .with_ttl(datetime.timedelta(seconds=settings.token_ttl_seconds))
    )


def mint(settings: TokenServerSettings, grant: CallGrant) -> str:
    """A JWT that may join only ``grant.room`` and dispatches the agent when the room is created."""
    token = (
        _access_token(settings, grant.identity)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=grant.room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
            )
        )
        .with_room_config(
            api.RoomConfiguration(
                agents=[api.RoomAgentDispatch(agent_name=grant.agent_name, metadata=dispatch_metadata(grant))]
            )
        )
    )
    if grant.name:
        token = token.with_name(grant.name)
    if grant.metadata:
        token = token.with_metadata(grant.metadata)
    if grant.attributes:
        token = token.with_attributes(grant.attributes)
    return token.to_jwt()


MONITOR_IDENTITY_PREFIX = "operator-"


def monitor_identity(uid: str) -> str:
    """``operator-<uid>-<suffix>``: unique per token, so one operator can listen from two tabs."""
    return f"{MONITOR_IDENTITY_PREFIX}{uid}-{secrets.token_hex(3)}"


def mint_monitor(settings: TokenServerSettings, *, identity: str, room: str, name: str = "") -> str:
    """A JWT that may only listen in ``room``: hidden from the caller and the agent, publishes nothing.

    No room configuration and no agent dispatch: the call's room already has its agent.
    """
    token = _access_token(settings, identity).with_grants(
        api.VideoGrants(
            room_join=True,
            room=room,
            hidden=True,
            can_subscribe=True,
            can_publish=False,
            can_publish_data=False,
            can_update_own_metadata=False,
        )
    )
    if name:
        token = token.with_name(name)
    return token.to_jwt()
