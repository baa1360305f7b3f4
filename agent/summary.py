"""Memory across calls: a short LLM summary of the call, for the call record and the next call."""

from __future__ import annotations

import asyncio
import logging

from livekit.agents import llm

import prompts

logger = logging.getLogger("voicedesk.agent.summary")

SUMMARY_TIMEOUT_S = 8.0  # inside LiveKit's 10 s shutdown budget
TRANSCRIPT_HEADER = "Transcript of the call:"


def transcript_of(history: llm.ChatContext) -> str:
    lines = []
    for item in history.items:
        if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant") and item.text_content:
            lines.append(f"{'Caller' if item.role == 'user' else 'Agent'}: {item.text_content}")
    return "\n".join(lines)


async def summarize(model: llm.LLM, history: llm.ChatContext) -> str | None:
    """None when the caller said nothing (there is nothing to remember) or the LLM failed."""
    if not any(isinstance(i, llm.ChatMessage) and i.role == "user" for i in history.items):
        return None
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
        return None
    return "".join(parts).strip() or None
