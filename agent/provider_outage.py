"""Provider faults on a live call: note every fallback switch, and when a whole kind is down,
apologise in a recorded voice, hand the caller to a person or promise a call back, and mark
the call degraded.

The fallback adapters (see ``providers.py``) absorb a failing provider by moving to the next;
the session reports an error that is not recoverable only once every provider of that kind
(speech to text, the LLM or text to speech) failed, retries included. The conversation cannot
go on then (the agent cannot hear, think or speak), so the caller hears why from a WAV that
needs no provider (``prompts.recorded``) instead of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from livekit.agents import (
    AgentSession,
    ConversationItemAddedEvent,
    ErrorEvent,
    UserInputTranscribedEvent,
    llm,
    stt,
    tts,
)
from livekit.agents.llm import ChatMessage

import prompts
from agent import metrics
from agent.call_control import PLAYOUT_LIMIT_S, CallControl
from agent.call_record import CallRecord
from prompts import recorded

logger = logging.getLogger("voicedesk.agent.provider_outage")

_KINDS = {"stt_error": "stt", "llm_error": "llm", "tts_error": "tts"}
_ADAPTERS: dict[str, type[Any]] = {
    "stt": stt.FallbackAdapter,
    "llm": llm.FallbackAdapter,
    "tts": tts.FallbackAdapter,
}


class ProviderOutage:
    def __init__(
        self,
        session: AgentSession,
        control: CallControl,
        record: CallRecord | None,
        *,
        can_transfer: bool,
        stt_rounds: int,
    ) -> None:
        """``can_transfer``: a phone caller with HUMAN_TRANSFER_TO set, who can be handed over.
        ``stt_rounds``: failed rounds over every STT provider that make speech to text down."""
        self._session = session
        self._control = control
        self._record = record
        self._can_transfer = can_transfer
        self.kind_down: str | None = None  # set once: the first kind that went down ends the call
        self._unanswered: list[str] = []  # the caller's final transcripts not yet in the conversation
        self._stt_rounds = stt_rounds
        self._stt_failed_rounds = 0
        session.on("error", self._on_error)
        session.on("user_input_transcribed", self._on_transcript)
        session.on("conversation_item_added", self._on_item)
        for kind, adapter in (("stt", session.stt), ("llm", session.llm), ("tts", session.tts)):
            if isinstance(adapter, _ADAPTERS[kind]):
                providers = _providers(adapter, kind)
                adapter.on(
                    f"{kind}_availability_changed",
                    lambda ev, kind=kind, providers=providers: self._on_availability(kind, providers, ev),
                )

    def _event(self, name: str, **detail: object) -> None:
        if self._record is not None:
            self._record.event(name, **detail)

    def _on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        self._stt_failed_rounds = 0
        if ev.is_final and ev.transcript.strip():
            self._unanswered.append(ev.transcript.strip())

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, ChatMessage) and ev.item.role == "user":
            self._unanswered.clear()

    def _on_availability(self, kind: str, providers: list[Any], ev: Any) -> None:
        """A provider failed (the next one serves) or came back. Runs inside the adapter's
        stream: it must never raise."""
        instance = getattr(ev, kind)
        try:
            self._event(
                "provider_available" if ev.available else "provider_unavailable",
                service=kind,
                provider=instance.provider,
                model=instance.model,
                position=providers.index(instance) if instance in providers else None,
            )
        except Exception:
            logger.exception("could not record a provider switch")
        if not ev.available:
            logger.warning(
                "%s provider %s (%s) failed; the next one serves", kind, instance.provider, instance.model
            )

    def _on_error(self, ev: ErrorEvent) -> None:
        kind = _KINDS.get(getattr(ev.error, "type", ""))
        if kind is None or self.kind_down is not None or self._control.ending:
            return
        if ev.error.recoverable:
            # A round over every STT provider fails only once the caller spoke (the OpenAI STT
            # waits for an utterance), which restarts LiveKit's retry budget each time: count
            # the failed rounds here, so a caller nobody can hear is told after a bounded time.
            if kind != "stt":
                return
            self._stt_failed_rounds += 1
            if self._stt_failed_rounds < self._stt_rounds:
                return
        self.kind_down = kind
        metrics.provider_error(f"all_{kind}", "outage")
        logger.error("every %s provider failed: apologising and ending the call", kind)
        self._event("provider_outage", service=kind, error=type(ev.error.error).__name__)
        question = " ".join(self._unanswered)  # what no reply could be made to
        self._unanswered.clear()
        if self._record is not None:
            self._record.mark_degraded()
            if question:  # belongs in the record
                self._record.unanswered(question)
        self._control.spawn(self._apologise(kind, question), "provider-outage")

    async def _apologise(self, kind: str, question: str) -> None:
        reason = f"every {kind} provider failed"
        # Set first: a transferred call is stored as failed by the outage too (degraded, and the
        # `transfer`/`transferred` events tell where the caller went).
        self._control.final_status = "failed"
        if self._can_transfer:
            await self._say_recorded("outage_transfer")
            # The recorded line announced the hand-over, and a refusal is answered with a recorded
            # line too: the TTS may be what is down. With the LLM down, the person taking over
            # gets the transcript's tail, the unanswered question included.
            summary = self._control.transcript_tail(question) if kind == "llm" else None
            if await self._control.transfer_to_human(
                reason, announce=False, end_reason="provider_outage", summary=summary
            ):
                return
            # Refused (the call back is recorded by the control) unless the call is already ending.
            if not self._control.ending:
                await self._say_recorded("outage_callback")
        else:
            await self._say_recorded("outage_callback")
            self._event("callback_requested", reason=reason)
        await self._control.hang_up("provider_outage")

    async def _say_recorded(self, name: str) -> None:
        # Queued behind the reply that failed (not interrupting it): that reply's scheduling is
        # what stores the caller's last words in the record.
        handle = self._session.say(prompts.line(name), audio=recorded.frames(name), allow_interruptions=False)
        with contextlib.suppress(TimeoutError, RuntimeError):
            await asyncio.wait_for(handle.wait_for_playout(), PLAYOUT_LIMIT_S)


def _providers(adapter: Any, kind: str) -> list[Any]:
    return list(getattr(adapter, f"_{kind}_instances", []))
