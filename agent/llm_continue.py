"""Have the fallback LLM continue a reply the failing LLM was cut off in, instead of restarting it.

With ``retry_on_chunk_sent`` LiveKit's ``FallbackAdapter`` asks the next LLM the same
question again after the first one dropped mid-answer, and both answers' words reach the
caller: the opening is heard twice. This adapter asks the next LLM with the partial reply as an
assistant message and an instruction to go on from where it stopped, and drops a repeated
opening should the model start over anyway.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from livekit.agents import APIConnectOptions
from livekit.agents.llm import LLM, ChatChunk, ChatContext, FallbackAdapter, LLMStream, Tool, ToolChoice
from livekit.agents.llm.fallback_adapter import DEFAULT_FALLBACK_API_CONNECT_OPTIONS, FallbackLLMStream
from livekit.agents.types import NOT_GIVEN, NotGivenOr

CONTINUE_INSTRUCTION = (
    "Your reply above was cut off by a network error after the words shown; the caller has heard "
    "them. Continue it from exactly where it stopped, without repeating anything already said."
)


def _words(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^\w']", "", t).lower() for t in text.split()) if w]


def strip_repeat(said: str, text: str) -> str | None:
    """``text`` without a leading repeat of ``said`` (compared word by word, ignoring case and
    punctuation). None: ``text`` is still too short to tell."""
    said_words = _words(said)
    if not said_words:
        return text
    tokens = list(re.finditer(r"\S+", text))
    words = [(m, w) for m in tokens if (w := re.sub(r"[^\w']", "", m.group()).lower())]
    if len(words) <= len(said_words):
        # Not enough words to decide, unless it already differs.
        if [w for _, w in words] == said_words[: len(words)]:
            return None
        return text
    if [w for _, w in words[: len(said_words)]] != said_words:
        return text
    return text[words[len(said_words) - 1][0].end() :]


class ContinuingFallbackAdapter(FallbackAdapter):
    """``llm.FallbackAdapter`` whose streams continue a cut reply on the next LLM."""

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_FALLBACK_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LLMStream:
        return ContinuingLLMStream(
            llm=self,
            conn_options=conn_options,
            chat_ctx=chat_ctx,
            tools=tools or [],
            parallel_tool_calls=parallel_tool_calls,
            tool_choice=tool_choice,
            extra_kwargs=extra_kwargs,
        )


class ContinuingLLMStream(FallbackLLMStream):
    def __init__(self, llm: FallbackAdapter, **kwargs: Any) -> None:
        self._said = ""  # the reply's text already passed on, over every attempt (set before
        super().__init__(llm, **kwargs)  # the base class starts the generation task)

    async def _try_generate(self, *, llm: LLM, check_recovery: bool = False) -> AsyncIterable[ChatChunk]:
        if check_recovery or not self._said.strip():
            async for chunk in super()._try_generate(llm=llm, check_recovery=check_recovery):
                if not check_recovery and chunk.delta and chunk.delta.content:
                    self._said += chunk.delta.content
                yield chunk
            return
        original = self._chat_ctx
        self._chat_ctx = original.copy()
        self._chat_ctx.add_message(role="assistant", content=self._said)
        self._chat_ctx.add_message(role="system", content=CONTINUE_INSTRUCTION)
        try:
            async for chunk in self._without_repeat(super()._try_generate(llm=llm)):
                yield chunk
        finally:
            self._chat_ctx = original

    async def _without_repeat(self, chunks: AsyncIterable[ChatChunk]) -> AsyncIterator[ChatChunk]:
        """Hold the continuation's first words back until it is clear whether they repeat."""
        said, pending, held, decided = self._said, "", None, False
        async for chunk in chunks:
            content = chunk.delta.content if chunk.delta else None
            if decided or not content:
                self._said += content or ""
                yield chunk
                continue
            pending, held = pending + content, chunk
            rest = strip_repeat(said, pending)
            if rest is not None:
                decided = True
                if rest[:1].isalnum() and said[-1:].strip():
                    rest = " " + rest  # a continuation's first word, written without its space
                self._said += rest
                yield _with_content(held, rest)
        if not decided and held is not None:
            self._said += pending
            yield _with_content(held, pending)


def _with_content(chunk: ChatChunk, content: str) -> ChatChunk:
    assert chunk.delta is not None
    return chunk.model_copy(update={"delta": chunk.delta.model_copy(update={"content": content})})
