"""The JSON the token server, the operator API or a SIP dispatch rule puts on the agent dispatch."""

from __future__ import annotations

import json
import uuid
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from voicedesk import e164


class CallMetadata(BaseModel):
    channel: Literal["web", "pstn_inbound", "pstn_outbound"]
    # A SIP dispatch rule cannot mint an id per call, so an inbound phone call gets one here.
    call_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    profile_id: uuid.UUID | None = None
    firebase_uid: str | None = None
    phone_number: str | None = Field(
        default=None, pattern=e164.PATTERN, description="number to dial (outbound)"
    )
    purpose: str | None = Field(default=None, max_length=500, description="why we call (outbound)")

    @model_validator(mode="after")
    def _outbound_has_a_number(self) -> CallMetadata:
        if self.channel == "pstn_outbound" and not (self.phone_number and self.purpose):
            raise ValueError("an outbound call needs phone_number and purpose")
        return self

    @property
    def is_phone(self) -> bool:
        return self.channel != "web"


def parse_call_metadata(raw: str | None) -> CallMetadata | None:
    """None for a job without call metadata (console mode, a manual dispatch)."""
    if not raw:
        return None
    try:
        return CallMetadata.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None
