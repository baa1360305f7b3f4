"""An LLM reply made fit for the ear: no markdown, lists or URLs, and never over the word limit.

The LLM is told to be brief, but a model that writes a list or an essay anyway must not make the
caller listen to asterisks or to three minutes of speech. The reply is released sentence by
sentence (the TTS speaks whole sentences anyway), cleaned, and cut after the last sentence that
fits: what TTS speaks, the caller's transcript shows and the history stores is the same text.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from livekit.agents import llm

_ABBREVIATIONS = frozenset("e.g. i.e. etc. vs. mr. mrs. ms. dr. st. no. approx. inc. ltd. co.".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_FENCE = re.compile(r"^\s*```.*$", re.M)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"\b(?:https?://|www\.)([^\s/?#]+)[^\s]*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,2}[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s*")
_QUOTE = re.compile(r"^\s*>\s?")
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`+)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}.*$")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_SPACES = re.compile(r"\s+")


def speakable(segment: str) -> str:
    """One line or sentence of LLM text as a person would say it.

    Links keep their words, bare URLs become their site name ("help.acme.com"), list markers,
    headings and emphasis go, table cells become a comma-separated phrase.
    """
    text = _FENCE.sub("", segment)
    if _TABLE_RULE.fullmatch(text.strip()):
        return ""
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(lambda m: m.group(1).removeprefix("www."), text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _EMOJI.sub("", text)
    if "|" in text:
        text = ", ".join(c.strip() for c in text.strip().strip("|").split("|") if c.strip())
    text = _SPACES.sub(" ", text).strip()
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)  # what a removed emoji or URL left behind
    if text and text[-1].isalnum():
        text += "."  # a list item or heading is its own spoken sentence
    return text


def word_count(text: str) -> int:
    return len(text.split())


def clip_sentence(sentence: str, words: int) -> str:
    """The first ``words`` words of one over-long sentence, ending at a clause when it can."""
    head = " ".join(sentence.split()[:words])
    clause = max(head.rfind(","), head.rfind(";"), head.rfind(":"))
    if clause > len(head) // 2:
        head = head[:clause]
    return head.rstrip(",;: ") + "."


@dataclass
class SpokenReply:
    """Streaming: push LLM text in, take out whole speakable sentences within ``max_words``.

    ``tail`` is said after a cut (so the caller knows there is more); its words count too.
    """

    max_words: int
    tail: str = ""
    words: int = 0
    cut: bool = False
    _pending: str = ""
    _held: str | None = None

    def push(self, text: str) -> list[str]:
        if self.cut:
            return []
        self._pending += text
        ready: list[str] = []
        while (found := self._next_boundary()) is not None:
            sentence, self._pending = self._pending[: found[0]], self._pending[found[1] :]
            ready += self._admit(sentence)
            if self.cut:
                break
        return ready

    def flush(self) -> list[str]:
        """The rest once the LLM is done."""
        if self.cut:
            return []
        rest, self._pending = self._pending, ""
        out = self._admit(rest)
        if self._held is not None:  # it was the last sentence after all: it fits
            out.append(self._say(self._held))
            self._held = None
        return out

    def _next_boundary(self) -> tuple[int, int] | None:
        for m in _SENTENCE_END.finditer(self._pending):
            if m.end() == len(self._pending) and not m.group().endswith("\n"):
                return None  # "No." then "3"? wait for the next token to be sure
            before = self._pending[: m.start()].rsplit(None, 1)
            last = before[-1].lower() if before else ""
            if last in _ABBREVIATIONS or re.fullmatch(r"\d{1,2}[.)]", last):
                continue  # "e.g. this", "1. First": not the end of a sentence
            return m.start(), m.end()
        return None

    def _admit(self, raw: str) -> list[str]:
        sentence = speakable(raw)
        if not sentence:
            return []
        n, tail = word_count(sentence), word_count(self.tail)
        if self._held is not None:  # more follows a sentence that left no room for the tail
            self._held = None
            return self._cut()
        if self.words + n + tail <= self.max_words:
            return [self._say(sentence)]
        if self.words + n <= self.max_words:
            self._held = sentence  # fits only if it is the last one
            return []
        if self.words == 0:  # one sentence longer than the whole limit
            return [self._say(clip_sentence(sentence, self.max_words - tail)), *self._cut()]
        return self._cut()

    def _cut(self) -> list[str]:
        self.cut = True
        return [self._say(self.tail)] if self.tail else []

    def _say(self, sentence: str) -> str:
        """Sentences joined by one space, none trailing: the stored turn reads as it was said."""
        said = f" {sentence}" if self.words else sentence
        self.words += word_count(sentence)
        return said


async def spoken(
    chunks: AsyncIterable[llm.ChatChunk | str], reply: SpokenReply
) -> AsyncIterator[llm.ChatChunk | str]:
    """An ``llm_node`` stream with its text replaced by ``reply``'s sentences.

    Tool calls and usage pass through untouched, also after a cut: the model may still call a tool.
    """
    async for chunk in chunks:
        if isinstance(chunk, str):
            text = chunk
        elif isinstance(chunk, llm.ChatChunk):
            text = chunk.delta.content if chunk.delta else None
            if chunk.delta is not None and (chunk.delta.tool_calls or chunk.usage is not None):
                yield chunk.model_copy(update={"delta": chunk.delta.model_copy(update={"content": None})})
            elif chunk.delta is None and chunk.usage is not None:
                yield chunk
        else:
            yield chunk  # a FlushSentinel
            continue
        for sentence in reply.push(text or ""):
            yield sentence
    for sentence in reply.flush():
        yield sentence
