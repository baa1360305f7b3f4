"""The JSON the token server (or a SIP dispatch rule) puts on the agent dispatch."""

from __future__ import annotations

import json
import uuid
from typing import Literal

from pydantic import BaseModel, ValidationError


class CallMetadata(BaseModel):
    channel: Literal["web", "pstn_inbound", "pstn_outbound"]
    call_id: uuid.UUID
    profile_id: uuid.UUID | None = None
    firebase_uid: str | None = None


def parse_call_metadata(raw: str | None) -> CallMetadata | None:
    """None for a job without call metadata (console mode, a manual dispatch)."""
    if not raw:
        return None
    try:
        return CallMetadata.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None
