"""Realtime mode on top of the pipeline: what a realtime agent overrides, and its way back.

The session always holds the pipeline's STT, LLM and TTS. A realtime agent overrides the LLM with
the OpenAI Realtime model (and drops STT: the model transcribes). When the model errors or stalls,
the same conversation continues with a pipeline agent, so the caller never waits on a dead socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import (
    Agent,
    AgentSession,
    AgentStateChangedEvent,
    ErrorEvent,
    UserInputTranscribedEvent,
    llm,
)

from agent import metrics, providers
from agent.call_record import CallRecord
from agent.settings import AgentSettings

logger = logging.getLogger("voicedesk.agent")

# The model answers a finished turn within ~1 s; twice the pipeline's worst-case first token.
STALL_SECONDS = 4.0


def realtime_options(settings: AgentSettings, pipeline_tts: Any) -> dict[str, Any]:
    """Agent options for realtime mode: the model's own voice, or the pipeline's TTS speaking
    the model's text when ElevenLabs is configured."""
    return {
        "llm": providers.build_realtime(settings),
        "stt": None,  # the model transcribes the caller itself
        "tts": pipeline_tts if settings.elevenlabs_api_key else None,
        # The model's server-side turn detection; a client-side detector would switch it off.
        "turn_handling": {"turn_detection": "realtime_llm"},
    }


class RealtimeFallback:
    """Switches a realtime call to the pipeline on the model's first error or a stalled reply.

    The plugin's own retries take seconds each; a caller should not hear that. A stall is a turn
    the model accepted but did not start answering within ``stall_seconds``.
    """

    def __init__(
        self,
        session: AgentSession,
        pipeline_agent: Callable[[llm.ChatContext, bool, bool], Agent],
        record: CallRecord | None,
        *,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self._session = session
        self._pipeline_agent = pipeline_agent
        self._record = record
        self._stall_seconds = stall_seconds
        self._stall_timer: asyncio.TimerHandle | None = None
        self._active = True  # still in realtime mode
        session.on("error", self._on_error)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("agent_state_changed", self._on_agent_state)

    def _on_error(self, ev: ErrorEvent) -> None:
        if self._active and isinstance(ev.source, llm.RealtimeModel):
            self.fall_back(f"{type(ev.error.error).__name__}: {ev.error.error}"[:200])

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if self._active and ev.is_final and ev.transcript.strip():
            self._cancel_timer()
            loop = asyncio.get_running_loop()
            self._stall_timer = loop.call_later(self._stall_seconds, self.fall_back, "stalled")

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":  # "thinking" is no answer yet: a stall can follow it
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def fall_back(self, reason: str) -> None:
        if not self._active:
            return
        self._active = False
        self._cancel_timer()
        # The session's history: a realtime agent's own context lags the transcript.
        history = self._session.history.copy(exclude_instructions=True)
        said = [m for m in history.messages() if m.role in ("user", "assistant")]
        replying = self._session.agent_state in ("thinking", "speaking")
        # The caller's last words went unanswered, or the answer broke off: the pipeline answers.
        unanswered = any(m.role == "user" for m in said) and (
            said[-1].role == "user" or said[-1].interrupted or replying
        )
        # Cut what the failing model is saying (or waiting on): the hand-over waits for no speech.
        self._session.interrupt(force=True)
        greeted = any(m.role == "assistant" and not m.interrupted for m in said)
        logger.warning(
            "realtime model unavailable (%s): continuing the call in pipeline mode",
            reason,
            extra={"unanswered": unanswered, "greeted": greeted, "agent_state": self._session.agent_state},
        )
        metrics.provider_error("realtime", "fallback")
        if self._record is not None:
            self._record.event("fallback", provider="realtime", to="pipeline", reason=reason)
        self._session.update_agent(self._pipeline_agent(history, unanswered, not greeted))
