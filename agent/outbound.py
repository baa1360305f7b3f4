"""Dialling out: ring the customer through the outbound trunk and follow the call to its answer.

The call record follows the SIP outcome: ringing, then answered (in progress), or no answer,
busy or failed. Voicemail is recognised from what the callee "says" first (a greeting asking for
a message), not with LiveKit's AMD, which holds the agent's speech until it has decided: here the
agent speaks first, as soon as someone picks up.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from google.protobuf.duration_pb2 import Duration
from livekit import api
from livekit.agents import JobContext

from agent.settings import AgentSettings
from telephony.provisioning import find_outbound_trunk_id

logger = logging.getLogger("voicedesk.agent.outbound")

DialStatus = Literal["answered", "no_answer", "busy", "failed"]
# SIP final responses: the callee was busy or declined, or nobody picked up in time.
_BUSY = {486, 600, 603}
_NO_ANSWER = {408, 480, 487}

_VOICEMAIL = re.compile(
    r"leave (me |us )?(a |your )?(short |brief )?message|after the (tone|beep)|voice ?mail|mailbox"
    r"|(is|am|are) (not available|unavailable)|can'?t (take|come to) (your|the|my) (call|phone)"
    r"|record your message|reached the (voice ?mail|mailbox)",
    re.IGNORECASE,
)


def looks_like_voicemail(transcript: str) -> bool:
    return bool(_VOICEMAIL.search(transcript))


@dataclass(frozen=True)
class DialResult:
    status: DialStatus
    sip_code: int | None = None
    detail: str = ""


def participant_identity(number: str) -> str:
    return f"pstn-{number.lstrip('+')}"


async def dial(ctx: JobContext, settings: AgentSettings, number: str) -> DialResult:
    """Ring ``number`` and wait until it is answered (or why it was not)."""
    try:
        trunk_id = settings.sip_outbound_trunk_id or await find_outbound_trunk_id(
            ctx.api, settings.sip_outbound_trunk_name
        )
    except Exception as exc:  # noqa: BLE001 - LiveKit unreachable: a failed call, not a crashed job
        return DialResult("failed", detail=f"could not look up the outbound trunk: {exc}"[:200])
    if trunk_id is None:
        return DialResult("failed", detail=f"no outbound trunk named {settings.sip_outbound_trunk_name!r}")
    try:
        await ctx.api.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                room_name=ctx.room.name,
                sip_trunk_id=trunk_id,
                sip_call_to=number,
                participant_identity=participant_identity(number),
                participant_name="Callee",
                wait_until_answered=True,
                ringing_timeout=Duration(seconds=int(settings.outbound_ringing_seconds)),
                max_call_duration=Duration(seconds=int(settings.max_call_seconds) + 60),
            )
        )
    except api.TwirpError as exc:
        code = _sip_code(exc)
        status = _classify(code, exc.code)
        logger.info("outbound call not answered: %s (SIP %s, %s: %s)", status, code, exc.code, exc.message)
        return DialResult(status, code, f"{exc.code}: {exc.message}"[:200])
    except Exception as exc:  # noqa: BLE001 - a transport error: the call failed, say so on the record
        logger.warning("outbound call failed: %s", exc)
        return DialResult("failed", detail=f"{type(exc).__name__}: {exc}"[:200])
    return DialResult("answered", 200)


def _classify(sip_code: int | None, twirp_code: str) -> DialStatus:
    if sip_code in _BUSY:
        return "busy"
    if sip_code in _NO_ANSWER:
        return "no_answer"
    # livekit-sip gives up ringing at the timeout by cancelling the INVITE: no SIP code then.
    if sip_code is None and twirp_code in ("canceled", "deadline_exceeded"):
        return "no_answer"
    return "failed"


def _sip_code(exc: api.TwirpError) -> int | None:
    raw = (exc.metadata or {}).get("sip_status_code")
    if raw and str(raw).isdigit():
        return int(raw)
    match = re.search(r"\b([3-6][0-9]{2})\b", exc.message or "")
    return int(match.group(1)) if match else None
