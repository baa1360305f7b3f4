"""What `llm_node` produces instead of calling the LLM when a guardrail decided the turn.

Kept apart from the rules (agent/guardrails.py) because this part speaks LiveKit's chat types.
"""

from __future__ import annotations

import json
import uuid

from livekit.agents import ChatContext, ChatMessage, llm

from agent.guardrails import Verdict

TRANSFER_TOOL = "transfer_to_human"
REFUSED = "guardrail_refused"  # ChatMessage.extra key: the rule that refused this caller turn
_REASONS = {
    "asked_for_human": "The caller asked to speak to a person.",
    "upset": "The caller is upset.",
}


def new_caller_turn(chat_ctx: ChatContext) -> str | None:
    """The caller's words when the LLM is asked to answer them; None for a follow-up after a tool."""
    last = chat_ctx.items[-1] if chat_ctx.items else None
    if isinstance(last, ChatMessage) and last.role == "user":
        return last.text_content or ""
    return None


def mark_refused(chat_ctx: ChatContext, rule: str) -> None:
    """Tag the caller's turn: the same message object is what the call's history keeps."""
    last = chat_ctx.items[-1]
    assert isinstance(last, ChatMessage)
    last.extra[REFUSED] = rule


def refused_placeholder(message: ChatMessage) -> str | None:
    """What the LLM may read instead of a refused turn's words (None: not refused)."""
    rule = message.extra.get(REFUSED)
    return f"[a request the agent refused ({rule}); its words are withheld]" if rule else None


def without_refused_words(chat_ctx: ChatContext) -> ChatContext:
    """The context for the LLM, with every refused caller turn replaced by a placeholder.

    Later turns of the call must not carry a harmful request to the model either.
    """
    if not any(isinstance(i, ChatMessage) and i.extra.get(REFUSED) for i in chat_ctx.items):
        return chat_ctx
    safe = chat_ctx.copy()
    for n, item in enumerate(safe.items):
        if isinstance(item, ChatMessage) and (placeholder := refused_placeholder(item)):
            safe.items[n] = ChatMessage(
                role="user", content=[placeholder], id=item.id, created_at=item.created_at
            )
    return safe


def escalation_reason(verdict: Verdict) -> str:
    """`transfer_to_human`'s reason for an escalating rule, for the person taking over."""
    return _REASONS.get(verdict.rule, f"Guardrail rule {verdict.rule}.")


def instead_of_llm(verdict: Verdict) -> list[llm.ChatChunk | str]:
    """A refusal is the rule's fixed line; an escalation is a `transfer_to_human` call, so the
    hand-over takes the same path (summary, SIP transfer or call-back offer) as when the model
    chooses it, and is stored as that tool call."""
    if verdict.action == "refuse":
        assert verdict.line is not None
        return [verdict.line]
    call = llm.FunctionToolCall(
        name=TRANSFER_TOOL,
        arguments=json.dumps({"reason": escalation_reason(verdict)}),
        call_id=f"guardrail_{uuid.uuid4().hex[:12]}",
    )
    return [llm.ChatChunk(id=call.call_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))]
