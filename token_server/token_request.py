"""The body of ``POST /token``: LiveKit's standard token-source request, narrowed to what we allow.

LiveKit's JS SDK (``TokenSource.endpoint``) sends the ``TokenSourceRequest`` protobuf as JSON with
proto field names (snake_case, empty values omitted, agent choice in
``room_config.agents[0].agent_name``); protobuf JSON readers also accept camelCase, so both are
accepted here. The server decides identity, room and dispatch metadata; a client field that would
override those is refused with a 422 naming it.
"""

from __future__ import annotations

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

MAX_NAME_CHARS = 128
MAX_METADATA_BYTES = 4096
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTES_BYTES = 4096
RESERVED_ATTRIBUTE_PREFIX = "lk."  # LiveKit's own participant attributes (lk.agent.state, ...)


def _snake_or_camel(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


_CONFIG = ConfigDict(
    extra="forbid",
    alias_generator=AliasGenerator(validation_alias=_snake_or_camel),
    frozen=True,
)


class AgentDispatchRequest(BaseModel):
    """One entry of ``room_config.agents``: only the agent's name may be chosen, from the allow-list."""

    model_config = _CONFIG

    agent_name: str | None = Field(default=None, max_length=64)
    metadata: str | None = None

    @field_validator("metadata")
    @classmethod
    def _no_client_metadata(cls, value: str | None) -> None:
        if value:
            raise ValueError("dispatch metadata is set by the server (channel, profile, call); omit it")
        return None


class RoomConfigRequest(BaseModel):
    """``room_config``: the server configures the room; a client may only pick an allowed agent."""

    model_config = _CONFIG

    agents: list[AgentDispatchRequest] = Field(default_factory=list, max_length=1)


class TokenRequest(BaseModel):
    """LiveKit ``TokenSourceRequest``: every field optional, unknown fields refused."""

    model_config = _CONFIG

    room_name: str | None = None
    participant_name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    participant_identity: str | None = None
    participant_metadata: str | None = None
    participant_attributes: dict[str, str] | None = None
    room_config: RoomConfigRequest | None = None

    @field_validator("room_name")
    @classmethod
    def _no_room_name(cls, value: str | None) -> None:
        if value:
            raise ValueError("the server assigns a fresh room to every call; omit room_name")
        return None

    @field_validator("participant_metadata")
    @classmethod
    def _metadata_size(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes")
        return value or None

    @field_validator("participant_attributes")
    @classmethod
    def _attributes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if not value:
            return None
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        size = 0
        for key, item in value.items():
            if not key or len(key) > MAX_NAME_CHARS:
                raise ValueError(f"attribute keys must be 1-{MAX_NAME_CHARS} characters")
            if key.lower().startswith(RESERVED_ATTRIBUTE_PREFIX):
                raise ValueError(
                    f"attribute {key!r}: keys starting with {RESERVED_ATTRIBUTE_PREFIX!r} are "
                    "reserved for LiveKit"
                )
            size += len(key.encode()) + len(item.encode())
        if size > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"attributes must total at most {MAX_ATTRIBUTES_BYTES} bytes")
        return value

    def requested_agent(self) -> str | None:
        """The agent name the client asked for, if any."""
        if self.room_config and self.room_config.agents:
            return self.room_config.agents[0].agent_name or None
        return None


class TokenResponse(BaseModel):
    """LiveKit ``TokenSourceResponse`` (proto field names, which every SDK reads)."""

    server_url: str
    participant_token: str
