"""The LiveKit Agents worker: one `AgentServer`, explicitly dispatched by name.

Settings are read when this module is imported, in the main process and in every job process,
so a bad value stops the worker at start-up with a message naming the variable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

from livekit.agents import AgentServer, AgentSession, CloseEvent, JobContext, JobProcess, room_io
from livekit.agents.voice.events import CloseReason

from agent import providers
from agent.call_metadata import parse_call_metadata
from agent.call_record import CallRecord
from agent.caller import Caller, load_caller
from agent.retrieval import Retrieval
from agent.settings import AgentSettings
from agent.summary import summarize
from agent.voice_agent import VoiceDeskAgent
from db import calls, profiles
from db.pool import open_pool
from knowledge.embeddings import build_embedder
from knowledge.settings import KnowledgeSettings
from voicedesk.config import load_settings

logger = logging.getLogger("voicedesk.agent")

settings = load_settings(AgentSettings)
kb_settings = load_settings(KnowledgeSettings)

_END_REASONS = {
    CloseReason.PARTICIPANT_DISCONNECTED: "caller_hung_up",
    CloseReason.USER_INITIATED: "agent_ended",
    CloseReason.TASK_COMPLETED: "completed",
    CloseReason.JOB_SHUTDOWN: "worker_shutdown",
    CloseReason.ERROR: "error",
}


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process before any call: load models off the call's clock."""
    proc.userdata["vad"] = providers.load_vad()
    proc.userdata["embedder"] = build_embedder(kb_settings)


def _load_by_calls(server: AgentServer) -> float:
    """Load as a share of WORKER_MAX_CALLS: capacity measured once (bench/), not guessed from CPU."""
    assert settings.worker_max_calls is not None
    return len(server.active_jobs) / settings.worker_max_calls


server = AgentServer(
    setup_fnc=prewarm,
    load_fnc=_load_by_calls if settings.worker_max_calls else None,
    load_threshold=0.999 if settings.worker_max_calls else 0.7,
    ws_url=settings.livekit_url,
    api_key=settings.livekit_api_key,
    api_secret=settings.livekit_api_secret.get_secret_value(),
    port=settings.worker_http_port,
    **(
        {"num_idle_processes": settings.worker_num_idle_processes}
        if settings.worker_num_idle_processes is not None
        else {}
    ),
)


@server.rtc_session(agent_name=settings.agent_name)
async def entrypoint(ctx: JobContext) -> None:
    meta = parse_call_metadata(ctx.job.metadata)
    ctx.log_context_fields = {"room": ctx.room.name, "call_id": str(meta.call_id) if meta else None}

    # Non-blocking pool: a database that is slow or down must not delay the greeting.
    pool = await open_pool(os.environ["DATABASE_URL"], min_size=1, max_size=3, wait=False)
    try:
        caller = await asyncio.wait_for(load_caller(pool, meta), timeout=2.0)
    except TimeoutError:
        logger.warning("caller profile not loaded in time; continuing without it")
        caller = Caller()

    model = providers.build_llm(settings)
    session: AgentSession = AgentSession(
        stt=providers.build_stt(settings),
        llm=model,
        tts=providers.build_tts(settings, voice_id=caller.settings.voice_id if caller.settings else None),
        vad=ctx.proc.userdata["vad"],
        turn_handling={
            "turn_detection": providers.build_turn_detector(),
            "endpointing": {
                "min_delay": settings.min_endpointing_delay,
                "max_delay": settings.max_endpointing_delay,
            },
            # VAD-based barge-in: the adaptive detector is a LiveKit Cloud service.
            "interruption": {"mode": "vad"},
            "preemptive_generation": {"enabled": True},
        },
    )

    record = CallRecord(pool, meta, ctx.room.name) if meta else None
    end_reason = "worker_shutdown"

    def on_close(ev: CloseEvent) -> None:
        nonlocal end_reason
        end_reason = _END_REASONS.get(ev.reason, str(ev.reason))
        ctx.shutdown(reason=end_reason)

    session.on("close", on_close)

    retrieval = Retrieval(
        pool,
        ctx.proc.userdata["embedder"],
        caller_tier=caller.profile.subscription_tier if caller.profile else None,
        limit=kb_settings.kb_search_limit,
    )
    session.on("user_input_transcribed", retrieval.on_transcript)

    async def finish() -> None:
        # One callback, in order: LiveKit runs shutdown callbacks concurrently.
        if record is not None:
            await record.finish(end_reason)
            await remember(record.call_id)
        logger.info("retrieval %s", retrieval.stats)
        await pool.close()

    async def remember(call_id: uuid.UUID) -> None:
        """Runs after every call, also when the caller just hung up."""
        summary = await summarize(model, session.history)
        if summary is None:
            return
        try:
            await calls.set_summary(pool, call_id, summary)
            if caller.profile is not None:
                await profiles.remember_last_interaction(pool, caller.profile.id, summary)
        except Exception:
            logger.exception("could not store the call summary")

    ctx.add_shutdown_callback(finish)
    if record is not None:
        record.start()
        record.attach(session)

    await session.start(
        agent=VoiceDeskAgent(caller, retrieval, min_similarity=kb_settings.kb_min_similarity),
        room=ctx.room,
        room_options=room_io.RoomOptions(close_on_disconnect=True),
        record=False,  # voicedesk keeps its own record; nothing goes to LiveKit Cloud
    )
