"""The phone side of a call: who is on the line (from livekit-sip's attributes) and the policy check."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from livekit import rtc
from livekit.agents import JobContext
from psycopg_pool import AsyncConnectionPool

from agent.call_metadata import CallMetadata
from agent.call_policy import CallPolicy, Decision
from agent.outbound import participant_identity
from db import calls

logger = logging.getLogger("voicedesk.agent.phone")

SIP_JOIN_WAIT_S = 5.0  # livekit-sip puts the caller in the room before the agent is dispatched
COUNT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class PhoneParty:
    identity: str  # the SIP participant in the room
    number: str | None  # the customer's number
    our_number: str | None  # the company number they called (inbound)


async def phone_party(ctx: JobContext, meta: CallMetadata | None) -> PhoneParty | None:
    if meta is None or meta.channel == "web":
        return None
    if meta.channel == "pstn_outbound":
        assert meta.phone_number is not None
        return PhoneParty(participant_identity(meta.phone_number), meta.phone_number, None)
    try:
        sip = await asyncio.wait_for(
            ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP), SIP_JOIN_WAIT_S
        )
    except TimeoutError:
        logger.warning("no SIP participant joined the room")
        return None
    return PhoneParty(
        sip.identity,
        _e164(sip.attributes.get("sip.phoneNumber")),
        _e164(sip.attributes.get("sip.trunkPhoneNumber")),
    )


def _e164(number: str | None) -> str | None:
    """Carriers send E.164 with or without the +; a withheld number ("anonymous", empty) is None."""
    digits = (number or "").lstrip("+")
    return f"+{digits}" if digits.isdigit() and 7 <= len(digits) <= 15 else None


async def decide(
    policy: CallPolicy, pool: AsyncConnectionPool, meta: CallMetadata, number: str | None
) -> Decision:
    """The policy's verdict. Live calls are counted in the database (shared by every worker);
    if it cannot answer within a second, the cap is not applied rather than refusing callers.
    Two calls arriving in the same instant may both be admitted: the cap is soft by one."""
    live: int | None = None
    if policy.max_concurrent_calls is not None and meta.channel in policy.applies_to:
        try:
            live = await asyncio.wait_for(
                calls.count_live_calls(pool, meta.channel, besides=meta.call_id), COUNT_TIMEOUT_S
            )
        except Exception:  # noqa: BLE001 - fail open: a database fault must not turn callers away
            logger.warning("could not count live calls; concurrency cap not applied")
    return policy.decide(meta.channel, number, datetime.now(UTC), live)
