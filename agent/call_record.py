"""Keep the record of one call: its row in `calls`, every turn and event, in order, exactly once.

Writes go through a queue drained by one background task, so the audio path never waits on the
database. A write that still fails after a few quick retries goes to the call's on-disk journal,
and so does everything after it (order is kept); the journal is replayed as soon as the database
answers again, or by the worker's replayer after the call (also after a worker restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, ConversationItemAddedEvent, FunctionToolsExecutedEvent
from livekit.agents.llm import ChatMessage
from psycopg_pool import AsyncConnectionPool

from agent import metrics
from agent.call_metadata import CallMetadata
from agent.journal import CallJournal
from agent.record_ops import Op, apply
from voicedesk.pins import mask_pins

logger = logging.getLogger("voicedesk.agent.call_record")

# ChatMessage.metrics key -> stored latency key (milliseconds)
_LATENCY_KEYS = {
    "end_of_turn_delay": "end_of_utterance_ms",
    "transcription_delay": "stt_ms",
    "llm_node_ttft": "llm_ttft_ms",
    "tts_node_ttfb": "tts_ttfb_ms",
    "e2e_latency": "e2e_ms",
}
SECRET_TOOLS = {"verify_caller"}  # their arguments (a PIN) are never stored
SECRET_ARGUMENTS = {"redacted": True}

RETRY_DELAYS = (0.2, 0.5, 1.0)  # then the journal: a live call cannot wait on the database
ATTEMPT_TIMEOUT_S = 2.0
REPLAY_INTERVAL_S = 2.0


def _ts(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """Redact every string inside tool arguments and results."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, redact) for v in value]
    return value


class CallRecord:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        meta: CallMetadata,
        room_name: str,
        journal_dir: Path,
        redact: Callable[[str], str],
    ) -> None:
        self._pool = pool
        self._meta = meta
        self._room_name = room_name
        self._redact = redact
        self._journal = CallJournal(journal_dir, meta.call_id)
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._sequence: int | None = None  # assigned by the writer, after the call's start
        self._journaling = False
        self._last_replay = 0.0
        self._closed = False
        self._backlog = 0  # records in this call's journal
        self._degraded = False  # something failed that the caller noticed (see mark_degraded)
        self._stored_unanswered: str | None = None  # see unanswered()
        # Phone callers speak their PIN before they are verified: digits in their words are masked.
        self.mask_spoken_pins = meta.is_phone

    @property
    def call_id(self) -> uuid.UUID:
        return self._meta.call_id

    def _op(self, op: str, **fields: Any) -> None:
        if not self._closed:
            self._queue.put_nowait({"op": op, "call_id": str(self.call_id), **fields})

    # what the agent reports ------------------------------------------------------------------
    def start(
        self,
        *,
        status: str = "in_progress",
        profile_id: uuid.UUID | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
    ) -> None:
        """Queue the `calls` row and start the writer; returns at once."""
        self._writer = asyncio.create_task(self._drain(), name="call-record-writer")
        profile_id = profile_id or self._meta.profile_id
        self._op(
            "start",
            channel=self._meta.channel,
            room_name=self._room_name,
            profile_id=str(profile_id) if profile_id else None,
            started_by=self._meta.firebase_uid,
            started_at=_now(),
            status=status,
            from_number=from_number,
            to_number=to_number,
        )

    def status(self, status: str) -> None:
        """A live call moves on: ringing, then answered (``in_progress``)."""
        self._op("status", status=status, at=_now())

    def attach(self, session: AgentSession) -> None:
        session.on("conversation_item_added", self._on_item)
        session.on("function_tools_executed", self._on_tools)

    def event(self, kind: str, **detail: Any) -> None:
        self._op("event", kind=kind, detail=_scrub(detail, self._redact), occurred_at=_now())

    def mark_degraded(self) -> None:
        """The call could not be served as it should (e.g. every provider of a kind failed)."""
        self._degraded = True

    def complete(self, end_reason: str, *, status: str = "completed", degraded: bool = False) -> None:
        degraded = degraded or self._degraded
        self._op("complete", end_reason=end_reason, status=status, degraded=degraded, ended_at=_now())

    def recording(self, path: str, duration_s: float) -> None:
        self._op("recording", path=path, duration_s=duration_s)

    def summary(self, summary: str | None, outcome: str | None, profile_id: uuid.UUID | None) -> None:
        """``profile_id``: whose last-interaction memory this summary becomes (verified callers only)."""
        if summary and self._meta.is_phone:
            summary = mask_pins(summary)  # the summary model read the call before any masking
        self._op(
            "summary",
            summary=self._redact(summary) if summary else None,
            outcome=outcome,
            profile_id=str(profile_id) if profile_id else None,
        )

    def unanswered(self, text: str) -> None:
        """Store what the caller said that no reply could be made to (every LLM or TTS down):
        LiveKit adds the caller's words to the conversation only with a reply under way. Should
        it add them after all, they are not stored twice."""
        self._on_item(ConversationItemAddedEvent(item=ChatMessage(role="user", content=[text])))
        self._stored_unanswered = text

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
            return
        if item.role == "user" and self._stored_unanswered is not None:
            if (item.text_content or "") == self._stored_unanswered:  # LiveKit's late copy
                self._stored_unanswered = None
                return
        m = item.metrics or {}
        latency = {
            stored: round(float(m[key]) * 1000, 1) for key, stored in _LATENCY_KEYS.items() if m.get(key)
        }
        metrics.observe_turn(item.role, latency)
        self._op(
            "turn",
            role=item.role,
            # For an interrupted reply LiveKit keeps only the text that was actually spoken.
            content=self._redact(self._mask(item.role, item.text_content or "")),
            started_at=_ts(m.get("started_speaking_at")) or _ts(item.created_at),
            ended_at=_ts(m.get("stopped_speaking_at")),
            interrupted=item.interrupted,
            latency=latency,
        )

    def _mask(self, role: str, text: str) -> str:
        return mask_pins(text) if role == "user" and self.mask_spoken_pins else text

    def _on_tools(self, ev: FunctionToolsExecutedEvent) -> None:
        for call, output in ev.zipped():
            self._op(
                "turn",
                role="tool",
                content=call.name,
                started_at=_ts(call.created_at),
                ended_at=_ts(output.created_at),
                tool_name=call.name,
                tool_arguments=SECRET_ARGUMENTS
                if call.name in SECRET_TOOLS
                else _scrub(_json_or_text(call.arguments), self._redact),
                tool_result=_scrub({"output": output.output, "is_error": output.is_error}, self._redact),
            )

    async def close(self, within_s: float = 8.0) -> None:
        """Wait until everything queued is stored or journalled. Safe to call twice."""
        if self._closed or self._writer is None:
            return
        self._queue.put_nowait(None)
        self._closed = True
        try:
            await asyncio.wait_for(asyncio.shield(self._writer), within_s)
        except TimeoutError:
            self._writer.cancel()  # the writer journals whatever it had not stored
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    # the writer --------------------------------------------------------------------------------
    def _number(self, op: Op) -> None:
        if op["op"] in ("turn", "event") and "sequence" not in op:
            if self._sequence is None:  # the start never reached the database
                self._sequence = max((o.get("sequence", -1) for o in self._journal.pending()), default=-1) + 1
            op["sequence"] = self._sequence
            self._sequence += 1

    async def _drain(self) -> None:
        op: Op | None = None
        try:
            while True:
                try:
                    op = await asyncio.wait_for(
                        self._queue.get(), timeout=REPLAY_INTERVAL_S if self._journaling else None
                    )
                except TimeoutError:
                    await self._replay()
                    continue
                if op is None:
                    break
                self._number(op)
                if self._journaling:
                    self._to_journal(op)
                    await self._replay()
                else:
                    next_sequence = await self._store(op)
                    if op["op"] == "start":
                        self._sequence = next_sequence if next_sequence is not None else self._sequence
                op = None
            if self._journaling:
                await self._replay(force=True)
        except asyncio.CancelledError:
            if op is not None:
                self._to_journal(op)
            while not self._queue.empty():
                if (pending := self._queue.get_nowait()) is not None:
                    self._number(pending)
                    self._to_journal(pending)
            raise
        finally:
            self._journal.close()

    async def _store(self, op: Op) -> int | None:
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                return await asyncio.wait_for(apply(self._pool, op), ATTEMPT_TIMEOUT_S)
            except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001 - any failure: retry, then journal
                if delay is None:
                    logger.warning(
                        "database unavailable (%s); journalling the call record", type(exc).__name__
                    )
                    self._journaling = True
                    self._last_replay = time.monotonic()
                    self._to_journal(op)
                    return None
                metrics.db_write_retry()
                logger.info("call-record write failed (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(delay)
        return None

    def _to_journal(self, op: Op) -> None:
        self._journal.append(op)
        self._backlog += 1
        metrics.set_journal_backlog(self._backlog)

    async def _replay(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_replay < REPLAY_INTERVAL_S:
            return
        self._last_replay = time.monotonic()
        pending = self._journal.pending()
        try:
            for op in pending:
                result = await asyncio.wait_for(apply(self._pool, op), ATTEMPT_TIMEOUT_S)
                if op["op"] == "start" and result is not None and self._sequence is None:
                    self._sequence = result
        except Exception as exc:  # noqa: BLE001 - still down: keep journalling
            logger.debug("journal replay deferred: %s", exc)
            return
        self._journal.clear()
        self._backlog = 0
        metrics.set_journal_backlog(0)
        self._journaling = False
        logger.info("database is back: %d journalled call-record writes stored", len(pending))
