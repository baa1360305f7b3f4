"""Memory across calls: a short LLM summary and an outcome, for the call record and the next call."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Literal, get_args

from livekit.agents import llm

import prompts
from agent.guarded_turn import refused_placeholder

logger = logging.getLogger("voicedesk.agent.summary")

SUMMARY_TIMEOUT_S = 8.0  # inside LiveKit's 10 s shutdown budget
TRANSCRIPT_HEADER = "Transcript of the call:"
Outcome = Literal["resolved", "escalated", "abandoned", "unresolved", "follow_up"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


def transcript_of(history: llm.ChatContext) -> str:
    lines = []
    for item in history.items:
        if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant") and item.text_content:
            # A turn the guardrails refused is not sent to the summary model either.
            said = refused_placeholder(item) or item.text_content
            lines.append(f"{'Caller' if item.role == 'user' else 'Agent'}: {said}")
    return "\n".join(lines)


def parse(text: str) -> tuple[str | None, str | None]:
    """The model is asked for JSON; a plain-text answer is still a usable summary."""
    try:
        data = json.loads(text)
    except ValueError:
        return (text.strip() or None), None
    if not isinstance(data, dict):
        return None, None
    summary = str(data.get("summary") or "").strip() or None
    outcome = data.get("outcome") if data.get("outcome") in OUTCOMES else None
    return summary, outcome


async def summarize(model: llm.LLM, history: llm.ChatContext) -> tuple[str | None, str | None]:
    """(summary, outcome). A caller who said nothing abandoned the call: no LLM needed."""
    if not any(isinstance(i, llm.ChatMessage) and i.role == "user" for i in history.items):
        return None, "abandoned"
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=prompts.load("summary.md"))
    ctx.add_message(role="user", content=f"{TRANSCRIPT_HEADER}\n{transcript_of(history)}")
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_S):
            parts = [
                chunk.delta.content
                async for chunk in model.chat(chat_ctx=ctx)
                if chunk.delta is not None and chunk.delta.content
            ]
    except Exception:
        logger.exception("could not summarise the call")
        return None, None
    return parse("".join(parts))
