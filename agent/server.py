"""The LiveKit Agents worker: one `AgentServer`, explicitly dispatched by name.

Settings are read when this module is imported, in the main process and in every job process,
so a bad value stops the worker at start-up with a message naming the variable.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import uuid
from typing import Any

from livekit import api, rtc
from livekit.agents import (
    AgentServer,
    AgentSession,
    CloseEvent,
    ErrorEvent,
    JobContext,
    JobProcess,
    llm,
    room_io,
    stt,
    tts,
)
from livekit.agents.utils import http_context
from livekit.agents.vad import VAD
from livekit.agents.voice.events import CloseReason

import prompts
from agent import metrics, modes, providers, recording, transcript_sync
from agent.busy_line import answer_busy
from agent.call_control import CallControl
from agent.call_metadata import CallMetadata, parse_call_metadata
from agent.call_policy import PolicyFile
from agent.call_record import CallRecord
from agent.caller import Caller, load_caller
from agent.capacity import CallCapacity, is_overflow, taken_by, worker_label
from agent.early_audio import EarlyAudioOutput
from agent.greeting_cache import GreetingCache, greeting_audio
from agent.journal_replayer import run_replayer
from agent.outbound import dial, participant_identity
from agent.phone import decide, phone_party
from agent.provider_outage import ProviderOutage
from agent.realtime_turns import RealtimeTurns
from agent.retrieval import Retrieval
from agent.settings import AgentSettings
from agent.summary import summarize
from agent.verification import PinVerifier
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
policy = PolicyFile(settings.call_policy_file)
prompts.use_persona(settings.persona_file)
guardrails = settings.guardrails()

_END_REASONS = {
    CloseReason.PARTICIPANT_DISCONNECTED: "caller_hung_up",
    CloseReason.USER_INITIATED: "agent_ended",
    CloseReason.TASK_COMPLETED: "completed",
    CloseReason.JOB_SHUTDOWN: "worker_shutdown",
    CloseReason.ERROR: "error",
}


# How the call ended says more than the conversation did.
_OUTCOME_BY_END = {"transferred": "escalated", "voicemail": "follow_up"}
# The agent talks to the caller: a web user or a phone line, never an operator listening in.
_PARTICIPANT_KINDS = [rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, rtc.ParticipantKind.PARTICIPANT_KIND_SIP]


def _redact(text: str) -> str:
    return redact(text) if redaction.redaction_enabled else text


# Imported on a call's first use, each blocked the call's event loop for 0.1-0.5 s just as the
# greeting should play (LiveKit's loop monitor names them): imported in prewarm instead.
_LAZY_IMPORTS = (
    "anyio._backends._asyncio",
    "anyio._core._sockets",
    "anyio._core._synchronization",
    "openai.pagination",
    "openai.resources.audio.transcriptions",
    "livekit.agents.llm.async_toolset",
    "openai.resources.models",
    "numpy.fft",
)


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process before any call: load models off the call's clock."""
    for module in _LAZY_IMPORTS:
        importlib.import_module(module)
    transcript_sync.install()
    if redaction.redaction_enabled:
        install_redaction()  # before this process's log records leave for the worker
    metrics.reap_dead_processes()  # a crashed job must not count as an active call forever
    proc.userdata["vad"] = providers.load_vad()
    proc.userdata["embedder"] = build_embedder(kb_settings)
    # LiveKit's HTTP session (TTS, STT) loads the CA bundle once per process: done as the call
    # starts it blocks the event loop (0.2-2 s seen under load) just as the greeting should play.
    http_context._create_ssl_context()
    # Each client loads the CA bundle as it is built (0.1-0.5 s apiece under load): build the
    # pipeline's models here, so the call starts with them ready. A process takes one job.
    proc.userdata["models"] = _build_models(proc.userdata["vad"])
    greetings = GreetingCache(settings)
    if settings.greeting_cache_enabled and settings.elevenlabs_api_key:  # the model's own voice: no cache
        greetings.prewarm(settings.greeting_cache_prewarm_seconds)
    proc.userdata["greetings"] = greetings


# Load as a share of WORKER_MAX_CALLS (capacity measured once, not guessed from CPU), with a few
# overflow calls that only hear the busy line. Without it, LiveKit's CPU-based load applies.
capacity = (
    CallCapacity(settings.agent_name, settings.worker_max_calls, settings.worker_overflow_calls)
    if settings.worker_max_calls
    else None
)

server = AgentServer(
    setup_fnc=prewarm,
    **(capacity.server_options if capacity else {}),
    drain_timeout=settings.worker_drain_timeout,
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


if capacity is not None:
    capacity.bind(server)


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
    if capacity is not None:  # this worker's calls in hand, for full workers deciding on overflow
        reporting = capacity.run(server, os.environ["DATABASE_URL"])
        _background.add(asyncio.get_event_loop().create_task(reporting))


_background: set[asyncio.Task[None]] = set()


def _voice_of(caller: Caller) -> str | None:
    # An unverified phone caller does not get the account's voice: it would tell them whose it is.
    return caller.settings.voice_id if caller.known and caller.settings else None


def _build_models(vad: VAD) -> tuple[stt.STT, llm.LLM, tts.TTS | None]:
    return (
        providers.build_stt(settings, vad=vad),
        providers.build_llm(settings),
        providers.build_tts(settings),
    )


def _build_session(ctx: JobContext, caller: Caller) -> AgentSession:
    """The pipeline's models: all of pipeline mode, and realtime mode's fallback (agent/modes.py)."""
    stt_model, llm_model, tts_model = ctx.proc.userdata["models"]
    if (voice := _voice_of(caller)) and voice != settings.elevenlabs_voice_id:
        tts_model = providers.build_tts(settings, voice_id=voice)  # the caller chose their own
    return AgentSession(
        stt=stt_model,
        llm=llm_model,
        tts=tts_model,
        vad=ctx.proc.userdata["vad"],
        turn_handling={
            "turn_detection": providers.build_turn_detector(),
            "endpointing": {
                "min_delay": settings.min_endpointing_delay,
                "max_delay": settings.max_endpointing_delay,
            },
            # VAD-based barge-in: the adaptive detector is a LiveKit Cloud service.
            # A sound with no words in it (a cough) pauses the agent, which then resumes its sentence.
            "interruption": {
                "mode": "vad",
                "min_duration": settings.min_interruption_duration,
                "false_interruption_timeout": settings.false_interruption_timeout,
                "resume_false_interruption": settings.resume_false_interruption,
            },
            "preemptive_generation": {"enabled": True},
        },
        user_away_timeout=settings.silence_reprompt_seconds,
        conn_options=providers.build_connect_options(settings),
    )


@server.rtc_session(agent_name=settings.agent_name, on_request=capacity.on_request if capacity else None)
async def entrypoint(ctx: JobContext) -> None:
    meta = parse_call_metadata(ctx.job.metadata)
    if meta is not None and meta.channel == "pstn_inbound":
        # One id per room, so a job LiveKit restarts in the same room continues the same record.
        meta = meta.model_copy(
            update={"call_id": uuid.uuid5(uuid.NAMESPACE_URL, f"livekit-room:{ctx.room.name}")}
        )
    ctx.log_context_fields = {"room": ctx.room.name, "call_id": str(meta.call_id) if meta else None}

    # Non-blocking pool: a database that is slow or down must not delay the greeting.
    pool = await open_pool(os.environ["DATABASE_URL"], min_size=1, max_size=3, wait=False)
    await ctx.connect()
    party = await phone_party(ctx, meta)
    worker = taken_by(ctx.room.local_participant) or worker_label()
    if is_overflow(ctx):
        await answer_busy(ctx, settings, pool, meta, party, _redact, worker=worker)
        return
    # A web caller's agent usually arrives first: its voice is published now, so the caller
    # subscribes as it joins (RoomIO would wait for them). Not on the phone: livekit-sip answers
    # the call once it can subscribe, which should be when the agent is ready to greet.
    audio_out = EarlyAudioOutput(ctx.room) if meta is not None and meta.channel == "web" else None
    if audio_out is not None:
        audio_out.publish()
    number = party.number if party else None
    try:
        caller = await asyncio.wait_for(load_caller(pool, meta, number), timeout=2.0)
    except TimeoutError:
        logger.warning("caller profile not loaded in time; continuing without it")
        caller = Caller(verified=party is None, number=number, purpose=meta.purpose if meta else None)
    decision = await decide(policy.current(), pool, meta, number) if meta else None

    session = _build_session(ctx, caller)
    retrieval = (
        Retrieval(
            pool,
            ctx.proc.userdata["embedder"],
            caller_tier=caller.profile.subscription_tier if caller.known and caller.profile else None,
            limit=kb_settings.kb_search_limit,
            # Relevance is semantic: sharing a few words with a chunk (full text) is not an answer.
            min_similarity=kb_settings.kb_min_similarity,
        )
        if settings.uses_retrieval
        else None  # FEATURES_OFF (benchmarks): the tool answers "not found" without searching
    )
    if retrieval is not None:
        session.on("user_input_transcribed", retrieval.on_transcript)
    record = (
        CallRecord(pool, meta, ctx.room.name, settings.call_journal_dir, _redact)
        if meta and settings.keeps_call_record
        else None
    )
    control = CallControl(
        ctx,
        session,
        record,
        settings,
        sip_identity=party.identity if party else None,
        purpose=meta.purpose if meta else None,
    )
    ctx.room.on("sip_dtmf_received", control.on_dtmf)
    # Every provider of a kind down: a recorded apology, a person or a call back, a degraded record.
    can_transfer = party is not None and settings.transfer_uri is not None
    ProviderOutage(
        session, control, record, can_transfer=can_transfer, stt_rounds=settings.provider_max_retries + 1
    )
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
        await control.aclose()
        # First, so a phone leg still up is hung up now, not after the summary: nothing is left behind.
        await control.delete_room()
        await session.aclose()  # closes the recorder, so the file is complete
        if audio_out is not None:
            await audio_out.aclose()
        if record is not None and meta is not None:
            reason = control.end_reason or end_reason
            status = control.final_status or ("failed" if reason == "error" else "completed")
            # Only a caller known at the end (signed in, or verified by PIN) gets this call as memory.
            who = agent.caller if agent is not None else caller
            memory = who.profile.id if who.known and who.profile else None
            await _finish_record(ctx, session, record, meta, reason, status, memory)
        if retrieval is not None:
            logger.info("retrieval %s", retrieval.stats)
        await pool.close()

    agent: VoiceDeskAgent | None = None

    ctx.add_shutdown_callback(finish)
    outbound = meta is not None and meta.channel == "pstn_outbound"
    if record is not None and meta is not None:
        record.start(
            status="ringing" if outbound else "in_progress",
            profile_id=caller.profile.id if caller.profile else None,
            from_number=number if party and not outbound else None,
            to_number=meta.phone_number if outbound else (party.our_number if party else None),
        )
        record.event("worker", worker=worker)  # which machine and process took the call
        if decision is not None and decision.rule != "not_applicable":
            record.event("policy", **decision.model_dump(exclude={"message"}))
        record.attach(session)
        metrics.call_started(meta.channel)

    refused = decision is not None and not decision.allowed
    verifier = (
        PinVerifier(pool, caller.profile.id if caller.profile else None, settings.pin_max_attempts)
        if party is not None
        else None
    )

    def voice_agent(who: Caller, **options: Any) -> VoiceDeskAgent:
        return VoiceDeskAgent(
            who,
            retrieval,
            control=control,
            verifier=verifier,
            on_voicemail=(lambda: control.spawn(_voicemail(control), "voicemail")) if outbound else None,
            guardrails=guardrails,
            on_guardrail=(lambda v: record.event("guardrail", **v.event())) if record is not None else None,
            max_reply_words=settings.reply_max_words,
            # the early voice can be heard before RoomIO links the caller (agent/speech.py)
            transcript_ready=(lambda: session.room_io.wait_for_ready()) if audio_out is not None else None,
            **options,
        )

    agent = voice_agent(
        caller,
        consent_message=settings.recording_consent_message
        if settings.recording_enabled and not refused
        else "",
        # An outbound call opens when the callee answers; a refused one only hears why.
        greet=not (outbound or refused),
        greeting_audio=lambda text: greeting_audio(
            ctx.proc.userdata["greetings"], _voice_of(caller), text, session.tts
        ),
        **(modes.realtime_options(settings, session.tts) if settings.agent_mode == "realtime" else {}),
    )
    if settings.agent_mode == "realtime":  # the guardrails decide each turn before the model answers
        RealtimeTurns(session, guardrails)
    if settings.agent_mode == "realtime" and session.tts is not None:
        # The pipeline takes over the same conversation, with the caller as verified by then.
        modes.RealtimeFallback(
            session,
            lambda history, unanswered, greet: voice_agent(
                agent.caller if agent is not None else caller,
                chat_ctx=history,
                greet=greet,  # the model failed before the caller heard anything
                consent_message=agent.consent_message if greet and agent is not None else "",
                reply_on_enter=unanswered,
            ),
            record,
        )
    if audio_out is not None:
        session.output.audio = audio_out
    await session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            audio_output=audio_out is None,  # else the early one above
            close_on_disconnect=True,
            participant_kinds=_PARTICIPANT_KINDS,
            **({"participant_identity": party.identity} if party else {}),
        ),
        record=recording.RECORD_AUDIO_ONLY if settings.recording_enabled else False,
    )
    if not outbound and not await _caller_joined(ctx):
        control.final_status, control.end_reason = "failed", "caller_never_joined"
        ctx.shutdown(reason=control.end_reason)
        return
    if record is not None:
        # No await between these: every participant is recorded as joined exactly once.
        for p in ctx.room.remote_participants.values():
            _participant_event(record, "joined", p)
        ctx.room.on("participant_connected", lambda p: _participant_event(record, "joined", p))
        ctx.room.on("participant_disconnected", lambda p: _participant_event(record, "left", p))

    if refused:
        assert decision is not None
        await control.hang_up(decision.rule, decision.message)
        return
    if outbound:
        assert meta is not None and meta.phone_number is not None
        if not await _dial_out(ctx, meta.phone_number, control, record):
            return
        agent.open_call()  # the callee hears us first
    control.watch()  # silence and length count from the answer, not while it rings


async def _caller_joined(ctx: JobContext) -> bool:
    """Dispatched as the token was minted, the agent is often in the room before the caller."""
    try:
        await asyncio.wait_for(
            ctx.wait_for_participant(kind=_PARTICIPANT_KINDS), settings.caller_join_timeout_seconds
        )
    except TimeoutError:
        logger.warning("the caller did not join within %ss", settings.caller_join_timeout_seconds)
        return False
    except RuntimeError:  # the room closed first (deleted, or LiveKit's empty timeout)
        logger.warning("the room closed before the caller joined")
        return False
    return True


async def _dial_out(ctx: JobContext, number: str, control: CallControl, record: CallRecord | None) -> bool:
    """Ring the customer; True once answered, else the call ends with the reason."""
    if participant_identity(number) in ctx.room.remote_participants:
        return True  # a restarted job: the customer is already on the line, do not ring again
    result = await dial(ctx, settings, number)
    if record is not None:
        record.event("dial", status=result.status, sip_code=result.sip_code, detail=result.detail)
    if result.status != "answered":
        control.final_status = control.end_reason = result.status
        await control.delete_room()
        return False
    if record is not None:
        record.status("in_progress")
    return True


async def _voicemail(control: CallControl) -> None:
    """An answering machine: leave the configured message (or not) and hang up."""
    leave = settings.voicemail_action == "leave_message"
    message = prompts.line("voicemail_message", purpose=control.purpose or "") if leave else None
    await control.hang_up("voicemail", message)


def _participant_event(record: CallRecord, kind: str, participant: rtc.RemoteParticipant) -> None:
    who = rtc.ParticipantKind.Name(participant.kind).removeprefix("PARTICIPANT_KIND_").lower()
    record.event(kind, identity=participant.identity, participant_kind=who)


async def _finish_record(
    ctx: JobContext,
    session: AgentSession,
    record: CallRecord,
    meta: CallMetadata,
    end_reason: str,
    status: str,
    memory_profile: uuid.UUID | None,
) -> None:
    """After every call, also when the caller just hung up: close, recording, summary, flush."""
    record.complete(end_reason, status=status)
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
    if status in ("no_answer", "busy") or end_reason == "caller_never_joined":  # nobody to summarise
        await record.close()
        return
    summary, outcome = await summarize(session.llm, session.history)  # type: ignore[arg-type]
    outcome = _OUTCOME_BY_END.get(end_reason, outcome)
    if summary is not None or outcome is not None:
        record.summary(summary, outcome, memory_profile)
    await record.close()
