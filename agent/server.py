"""The LiveKit Agents worker: one `AgentServer`, explicitly dispatched by name.

Settings are read when this module is imported, in the main process and in every job process,
so a bad value stops the worker at start-up with a message naming the variable.
"""

from __future__ import annotations

import asyncio
import logging
import os

from livekit import api, rtc
from livekit.agents import AgentServer, AgentSession, CloseEvent, ErrorEvent, JobContext, JobProcess, room_io
from livekit.agents.voice.events import CloseReason

from agent import metrics, providers, recording
from agent.call_metadata import CallMetadata, parse_call_metadata
from agent.call_record import CallRecord
from agent.caller import Caller, load_caller
from agent.journal_replayer import run_replayer
from agent.retrieval import Retrieval
from agent.settings import AgentSettings
from agent.summary import summarize
from agent.voice_agent import VoiceDeskAgent
from db.pool import open_pool
from db.storage import StorageSettings
from knowledge.embeddings import build_embedder
from knowledge.settings import KnowledgeSettings
from voicedesk.config import load_settings
from voicedesk.logging_setup import install_call_id_from_room, install_redaction
from voicedesk.redaction import RedactionSettings, redact

logger = logging.getLogger("voicedesk.agent")

settings = load_settings(AgentSettings)
kb_settings = load_settings(KnowledgeSettings)
storage_settings = load_settings(StorageSettings)
redaction = load_settings(RedactionSettings)

_END_REASONS = {
    CloseReason.PARTICIPANT_DISCONNECTED: "caller_hung_up",
    CloseReason.USER_INITIATED: "agent_ended",
    CloseReason.TASK_COMPLETED: "completed",
    CloseReason.JOB_SHUTDOWN: "worker_shutdown",
    CloseReason.ERROR: "error",
}


def _redact(text: str) -> str:
    return redact(text) if redaction.redaction_enabled else text


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process before any call: load models off the call's clock."""
    if redaction.redaction_enabled:
        install_redaction()  # before this process's log records leave for the worker
    metrics.reap_dead_processes()  # a crashed job must not count as an active call forever
    proc.userdata["vad"] = providers.load_vad()
    proc.userdata["embedder"] = build_embedder(kb_settings)


def _load_by_calls(server: AgentServer) -> float:
    """Load as a share of WORKER_MAX_CALLS: capacity measured once (bench/), not guessed from CPU."""
    assert settings.worker_max_calls is not None
    return len(server.active_jobs) / settings.worker_max_calls


# Without WORKER_MAX_CALLS, LiveKit's own CPU-based load and threshold (off in dev) apply.
_capacity = {"load_fnc": _load_by_calls, "load_threshold": 0.999} if settings.worker_max_calls else {}

server = AgentServer(
    setup_fnc=prewarm,
    **_capacity,
    ws_url=settings.livekit_url,
    api_key=settings.livekit_api_key,
    api_secret=settings.livekit_api_secret.get_secret_value(),
    port=settings.worker_http_port,
    **(
        {"num_idle_processes": settings.worker_num_idle_processes}
        if settings.worker_num_idle_processes is not None
        else {}
    ),
    **metrics.server_options(),
)


@server.on("worker_started")
def _on_worker_started() -> None:
    if redaction.redaction_enabled:
        install_redaction()  # LiveKit installs its log handlers just before this event
    install_call_id_from_room()
    # Journals left by calls while the database was away, or by a worker that died.
    livekit = api.LiveKitAPI(
        settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
    )
    replayer = run_replayer(os.environ["DATABASE_URL"], settings.call_journal_dir, livekit)
    _background.add(asyncio.get_event_loop().create_task(replayer))


_background: set[asyncio.Task[None]] = set()


def _build_session(ctx: JobContext, caller: Caller) -> AgentSession:
    return AgentSession(
        stt=providers.build_stt(settings),
        llm=providers.build_llm(settings),
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

    session = _build_session(ctx, caller)
    retrieval = Retrieval(
        pool,
        ctx.proc.userdata["embedder"],
        caller_tier=caller.profile.subscription_tier if caller.profile else None,
        limit=kb_settings.kb_search_limit,
        # Relevance is semantic: sharing a few words with a chunk (full text) is not an answer.
        min_similarity=kb_settings.kb_min_similarity,
    )
    session.on("user_input_transcribed", retrieval.on_transcript)
    record = CallRecord(pool, meta, ctx.room.name, settings.call_journal_dir, _redact) if meta else None
    end_reason = "worker_shutdown"

    @session.on("close")
    def _on_close(ev: CloseEvent) -> None:
        nonlocal end_reason
        end_reason = _END_REASONS.get(ev.reason, str(ev.reason))
        ctx.shutdown(reason=end_reason)

    @session.on("error")
    def _on_error(ev: ErrorEvent) -> None:
        provider = type(ev.source).__module__.split(".")[-2] if ev.source else "unknown"
        metrics.provider_error(provider, type(ev.error).__name__)
        if record is not None:
            record.event(
                "error", provider=provider, error=type(ev.error).__name__, recoverable=ev.error.recoverable
            )

    async def finish() -> None:
        # One callback, in order: LiveKit runs shutdown callbacks concurrently.
        await session.aclose()  # closes the recorder, so the file is complete
        if record is not None and meta is not None:
            await _finish_record(ctx, session, record, meta, caller, end_reason)
        logger.info("retrieval %s", retrieval.stats)
        await pool.close()

    ctx.add_shutdown_callback(finish)
    if record is not None and meta is not None:
        record.start()
        record.attach(session)
        metrics.call_started(meta.channel)

    await session.start(
        agent=VoiceDeskAgent(
            caller,
            retrieval,
            consent_message=settings.recording_consent_message if settings.recording_enabled else "",
        ),
        room=ctx.room,
        room_options=room_io.RoomOptions(close_on_disconnect=True),
        record=recording.RECORD_AUDIO_ONLY if settings.recording_enabled else False,
    )
    if record is not None:
        # No await between these: every participant is recorded as joined exactly once.
        for p in ctx.room.remote_participants.values():
            _participant_event(record, "joined", p)
        ctx.room.on("participant_connected", lambda p: _participant_event(record, "joined", p))
        ctx.room.on("participant_disconnected", lambda p: _participant_event(record, "left", p))


def _participant_event(record: CallRecord, kind: str, participant: rtc.RemoteParticipant) -> None:
    who = rtc.ParticipantKind.Name(participant.kind).removeprefix("PARTICIPANT_KIND_").lower()
    record.event(kind, identity=participant.identity, participant_kind=who)


async def _finish_record(
    ctx: JobContext,
    session: AgentSession,
    record: CallRecord,
    meta: CallMetadata,
    caller: Caller,
    end_reason: str,
) -> None:
    """After every call, also when the caller just hung up: close, recording, summary, flush."""
    record.complete(end_reason, status="failed" if end_reason == "error" else "completed")
    metrics.call_ended(meta.channel, end_reason)
    if settings.recording_enabled:
        try:
            stored = await recording.store(storage_settings, meta.call_id, ctx.session_directory)
        except Exception:
            logger.exception("could not store the recording")
            record.event("recording_failed")
        else:
            if stored is not None:
                record.recording(*stored)
    summary, outcome = await summarize(session.llm, session.history)  # type: ignore[arg-type]
    if summary is not None or outcome is not None:
        record.summary(summary, outcome, caller.profile.id if caller.profile else None)
    await record.close()
