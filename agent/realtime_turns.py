"""Realtime mode's caller turns: the guardrails (and an answering machine's greeting) come first.

Left to itself, the Realtime server answers a turn the moment it detects its end, before any hook
of ours has seen the words (LiveKit calls `Agent.on_user_turn_completed` only for turns it
detects itself). So the server detects turns without answering them (agent/realtime_model.py),
and each final transcript comes here. As in pipeline mode (`VoiceDeskAgent.llm_node`):

- the agent's own hook runs first: an outbound call's answering machine, the guardrail event;
- a refused turn never reaches the model: its words are replaced in the model's conversation by
  a placeholder, and the caller hears the rule's fixed line;
- an escalated turn runs `transfer_to_human` as if the model had called it (same hand-over, same
  stored tool call), and the model then answers the tool's result;
- any other turn gets the model's reply.

The cost is the transcript's latency before the reply starts (see README, "Realtime mode").
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from livekit.agents import (
    AgentSession,
    ChatMessage,
    FunctionToolsExecutedEvent,
    StopResponse,
    UserInputTranscribedEvent,
    llm,
)

from agent import guarded_turn
from agent.guardrails import Guardrails, Verdict
from agent.speech import speak
from agent.voice_agent import VoiceDeskAgent

logger = logging.getLogger("voicedesk.agent")


class RealtimeTurns:
    """Decides each caller turn of a realtime agent, one at a time and in order."""

    def __init__(self, session: AgentSession, guardrails: Guardrails | None) -> None:
        self._session = session
        self._guardrails = guardrails
        self._queue: asyncio.Queue[UserInputTranscribedEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("close", lambda _ev: self._task.cancel() if self._task is not None else None)

    def _agent(self) -> VoiceDeskAgent | None:
        """The realtime agent in charge, or None once the call went on in pipeline mode."""
        try:
            agent = self._session.current_agent
        except RuntimeError:  # not started, or closing
            return None
        if isinstance(agent, VoiceDeskAgent) and isinstance(agent.llm, llm.RealtimeModel):
            return agent
        return None

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        # LiveKit adds the turn to the agent's conversation just after this event: decide in a task.
        if ev.is_final and ev.transcript.strip() and self._agent() is not None:
            self._queue.put_nowait(ev)
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="realtime-turns")

    async def _run(self) -> None:
        while True:
            ev = await self._queue.get()
            agent = self._agent()
            if agent is None:
                continue
            try:
                await self._decide(agent, ev)
            except Exception:
                logger.exception("could not decide a realtime caller turn")

    async def _decide(self, agent: VoiceDeskAgent, ev: UserInputTranscribedEvent) -> None:
        said = ev.transcript
        message = agent.chat_ctx.get_by_id(ev.item_id) if ev.item_id else None
        if not isinstance(message, ChatMessage):
            message = ChatMessage(role="user", content=[said])
        try:
            await agent.on_user_turn_completed(agent.chat_ctx.copy(), message)
        except StopResponse:  # an answering machine: the agent leaves its message instead
            return
        verdict = self._guardrails.check(said) if self._guardrails is not None else None
        if verdict is None:
            self._session.generate_reply(input_modality="audio")  # a spoken turn: its latency counts
        elif verdict.action == "refuse":
            await self._refuse(agent, message, verdict)
        else:
            await self._escalate(agent, verdict)

    async def _refuse(self, agent: VoiceDeskAgent, message: ChatMessage, verdict: Verdict) -> None:
        # The same message object is the call's history: a pipeline taking over withholds it too.
        message.extra[guarded_turn.REFUSED] = verdict.rule
        # The model's conversation keeps a placeholder, not the words (nor their audio).
        await agent.update_chat_ctx(guarded_turn.without_refused_words(agent.chat_ctx.copy()))
        assert verdict.line is not None
        speak(self._session, verdict.line)

    async def _escalate(self, agent: VoiceDeskAgent, verdict: Verdict) -> None:
        reason = guarded_turn.escalation_reason(verdict)
        call = llm.FunctionCall(
            call_id=f"guardrail_{uuid.uuid4().hex[:12]}",
            name=guarded_turn.TRANSFER_TOOL,
            arguments=json.dumps({"reason": reason}),
        )
        result = await agent.hand_over(reason)
        output = llm.FunctionCallOutput(call_id=call.call_id, name=call.name, output=result, is_error=False)
        self._session.emit(
            "function_tools_executed",
            FunctionToolsExecutedEvent(function_calls=[call], function_call_outputs=[output]),
        )
        if self._agent() is not agent or json.loads(result).get("transferred"):
            return  # the call went to a person (or on in pipeline mode): nothing more to say here
        ctx = agent.chat_ctx.copy()
        ctx.items.extend([call, output])
        await agent.update_chat_ctx(ctx)
        # The model answers the tool's result, as after its own call.
        self._session.generate_reply(input_modality="audio")
