"""Knowledge-base retrieval for one call, started early from the caller's interim transcript.

While the caller is still speaking, a stable interim transcript starts a search; when the LLM
then calls `search_knowledge_base` with a query about the same thing, the result is often ready
already. Every tool call records whether it was served early and how much time that saved.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field

from livekit.agents import UserInputTranscribedEvent
from psycopg_pool import AsyncConnectionPool

from db import kb
from knowledge.embeddings import Embedder
from knowledge.search import search_knowledge

logger = logging.getLogger("voicedesk.agent.retrieval")

_WORD = re.compile(r"[a-z0-9']+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from have how i if in is it its me my of on or our "
    "please so that the this to was we what when where which who why will with you your".split()
)
MIN_PREFETCH_WORDS = 3  # shorter interims are rarely about anything yet
MIN_OVERLAP = 0.6  # share of the query's content words the early transcript must contain


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


@dataclass
class SearchResult:
    passages: list[kb.Passage]
    search_ms: float


@dataclass
class _Prefetch:
    text: str
    words: set[str]
    task: asyncio.Task[SearchResult]


@dataclass
class RetrievalStats:
    tool_calls: int = 0
    served_early: int = 0
    saved_ms: float = 0.0
    prefetches: int = 0


@dataclass
class Retrieval:
    pool: AsyncConnectionPool
    embedder: Embedder
    caller_tier: str | None
    limit: int = 5
    min_similarity: float | None = None  # below it a passage is not an answer (KB_MIN_SIMILARITY)
    stats: RetrievalStats = field(default_factory=RetrievalStats)
    _prefetches: list[_Prefetch] = field(default_factory=list)

    async def search(self, query: str) -> SearchResult:
        started = time.perf_counter()
        passages = await search_knowledge(
            self.pool,
            self.embedder,
            query,
            caller_tier=self.caller_tier,
            limit=self.limit,
            min_similarity=self.min_similarity,
        )
        return SearchResult(passages, (time.perf_counter() - started) * 1000)

    def on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        """Start a search from what the caller has said so far, at most one running at a time."""
        words = content_words(ev.transcript)
        if len(ev.transcript.split()) < MIN_PREFETCH_WORDS or not words:
            return
        latest = self._prefetches[-1] if self._prefetches else None
        if latest is not None:
            if not latest.task.done() or words <= latest.words:
                return  # one in flight, or nothing new to look for
            if not ev.is_final and len(words - latest.words) < 2:
                return  # wait for the interim to grow a little before searching again
        task = asyncio.create_task(self.search(ev.transcript), name="kb-prefetch")
        task.add_done_callback(_log_failure)
        self._prefetches.append(_Prefetch(ev.transcript, words, task))
        del self._prefetches[:-4]
        self.stats.prefetches += 1

    async def for_tool(self, query: str) -> tuple[SearchResult, dict[str, float | bool]]:
        """The tool's result: an early search about the same words when there is one, else a fresh one."""
        self.stats.tool_calls += 1
        wanted = content_words(query)
        early = next(
            (
                p
                for p in reversed(self._prefetches)
                if wanted and len(wanted & p.words) / len(wanted) >= MIN_OVERLAP and not p.task.cancelled()
            ),
            None,
        )
        if early is not None:
            waited = time.perf_counter()
            try:
                result = await early.task
            except Exception:  # noqa: BLE001 - an early search that failed is just not used
                pass
            else:
                saved = max(result.search_ms - (time.perf_counter() - waited) * 1000, 0.0)
                self.stats.served_early += 1
                self.stats.saved_ms += saved
                return result, {
                    "served_early": True,
                    "search_ms": round(result.search_ms, 1),
                    "saved_ms": round(saved, 1),
                }
        result = await self.search(query)
        return result, {"served_early": False, "search_ms": round(result.search_ms, 1), "saved_ms": 0.0}


def _log_failure(task: asyncio.Task[SearchResult]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("early knowledge-base search failed: %s", task.exception())
