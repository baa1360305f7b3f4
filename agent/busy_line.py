"""An overflow call: every worker is full, so the caller hears one polite line and the call ends.

No speech recognition, no LLM, no recording and no summary: one short line of text-to-speech
is all such a call costs. The call is still stored (status ``busy``, end reason
``workers_full``) so operators see how often callers found no free agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from livekit import rtc
from livekit.agents import Agent, AgentSession, JobContext, room_io
from psycopg_pool import AsyncConnectionPool

import prompts
from agent import metrics, providers
from agent.call_metadata import CallMetadata
from agent.call_record import CallRecord
from agent.phone import PhoneParty
from agent.settings import AgentSettings

logger = logging.getLogger("voicedesk.agent.busy_line")

END_REASON = "workers_full"
STATUS = "busy"
PLAYOUT_LIMIT_S = 20.0
CALLER_WAIT_S = 10.0
SIP_ANSWER_WAIT_S = 5.0
_CALLER_KINDS = [rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, rtc.ParticipantKind.PARTICIPANT_KIND_SIP]


async def answer_busy(
    ctx: JobContext,
    settings: AgentSettings,
    pool: AsyncConnectionPool,
    meta: CallMetadata | None,
    party: PhoneParty | None,
    redact: Callable[[str], str],
    *,
    worker: str,
) -> None:
    """Say the busy line, hang up (a phone caller hears the hang-up), and store the call."""
    record = (
        CallRecord(pool, meta, ctx.room.name, settings.call_journal_dir, redact)
        if meta and settings.keeps_call_record
        else None
    )
    session = AgentSession(tts=providers.build_tts(settings))
    try:
        if record is not None and meta is not None:
            outbound = meta.channel == "pstn_outbound"
            record.start(
                from_number=party.number if party and not outbound else None,
                to_number=meta.phone_number if outbound else (party.our_number if party else None),
            )
            record.event(
                "capacity",
                worker=worker,
                max_calls=settings.worker_max_calls,
                overflow_calls=settings.worker_overflow_calls,
            )
            record.attach(session)  # the line is stored as the assistant's one turn
            metrics.call_started(meta.channel)
        if meta is not None and meta.channel == "pstn_outbound":
            return  # not dialled yet: nobody to tell, the operator sees the busy status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.wait_for_participant(kind=_CALLER_KINDS), CALLER_WAIT_S)
        await session.start(
            agent=Agent(instructions="Say only the line you are given."),
            room=ctx.room,
            room_options=room_io.RoomOptions(
                audio_input=False,
                text_input=False,
                participant_kinds=_CALLER_KINDS,
                **({"participant_identity": party.identity} if party else {}),
            ),
            record=False,
        )
        if party is not None:
            await _answered(ctx, party.identity)
        handle = session.say(prompts.line("all_agents_busy"), allow_interruptions=False)
        with contextlib.suppress(TimeoutError, RuntimeError):
            await asyncio.wait_for(handle.wait_for_playout(), PLAYOUT_LIMIT_S)
    finally:
        with contextlib.suppress(Exception):
            await ctx.delete_room()
        await session.aclose()
        if record is not None and meta is not None:
            record.complete(END_REASON, status=STATUS)
            metrics.call_ended(meta.channel, END_REASON)
            await record.close()
        await pool.close()
        ctx.shutdown(reason=END_REASON)


async def _answered(ctx: JobContext, identity: str) -> None:
    """Wait until livekit-sip has answered the phone call and media flows (``sip.callStatus``).

    It answers only once it has subscribed to our audio track, so whatever is said before that
    would be lost: the caller would hear the line without its beginning.
    """
    answered = asyncio.Event()

    def check(*_: object) -> None:
        caller = ctx.room.remote_participants.get(identity)
        if caller is None or caller.attributes.get("sip.callStatus") == "active":
            answered.set()

    ctx.room.on("participant_attributes_changed", check)
    try:
        check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answered.wait(), SIP_ANSWER_WAIT_S)
    finally:
        ctx.room.off("participant_attributes_changed", check)
