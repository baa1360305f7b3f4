"""Keep the record of one call: its row in `calls` and every turn, in order, as it happens.

Writes go through a queue drained by one background task, so the audio path never waits on the
database and turns reach it in sequence order. A failed write is retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from livekit.agents import AgentSession, ConversationItemAddedEvent, FunctionToolsExecutedEvent
from livekit.agents.llm import ChatMessage
from psycopg_pool import AsyncConnectionPool

from agent.call_metadata import CallMetadata
from db import calls

logger = logging.getLogger("voicedesk.agent.call_record")

# ChatMessage.metrics key -> stored latency key (milliseconds)
_LATENCY_KEYS = {
    "end_of_turn_delay": "end_of_utterance_ms",
    "transcription_delay": "stt_ms",
    "llm_node_ttft": "llm_ttft_ms",
    "tts_node_ttfb": "tts_ttfb_ms",
    "e2e_latency": "e2e_ms",
}
_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class CallRecord:
    def __init__(self, pool: AsyncConnectionPool, meta: CallMetadata, room_name: str) -> None:
        self._pool = pool
        self._meta = meta
        self._room_name = room_name
        self._sequence = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._finished = False

    @property
    def call_id(self) -> uuid.UUID:
        return self._meta.call_id

    def start(self) -> None:
        """Queue the `calls` row and start the writer; returns at once."""
        self._writer = asyncio.create_task(self._drain(), name="call-record-writer")
        self._queue.put_nowait(
            lambda: calls.start_call(
                self._pool,
                call_id=self._meta.call_id,
                channel=self._meta.channel,
                room_name=self._room_name,
                profile_id=self._meta.profile_id,
                started_by=self._meta.firebase_uid,
            )
        )

    def attach(self, session: AgentSession) -> None:
        session.on("conversation_item_added", self._on_item)
        session.on("function_tools_executed", self._on_tools)

    def _enqueue_turn(self, **fields: Any) -> None:
        turn = calls.Turn(call_id=self._meta.call_id, sequence=self._sequence, **fields)
        self._sequence += 1
        self._queue.put_nowait(lambda: calls.add_turn(self._pool, turn))

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, ChatMessage) or item.role not in ("user", "assistant"):
            return
        metrics = item.metrics or {}
        self._enqueue_turn(
            role=item.role,
            content=item.text_content or "",
            started_at=_ts(metrics.get("started_speaking_at")) or _ts(item.created_at),
            ended_at=_ts(metrics.get("stopped_speaking_at")),
            interrupted=item.interrupted,
            latency={
                stored: round(float(metrics[key]) * 1000, 1)
                for key, stored in _LATENCY_KEYS.items()
                if metrics.get(key) is not None
            },
        )

    def _on_tools(self, ev: FunctionToolsExecutedEvent) -> None:
        for call, output in ev.zipped():
            self._enqueue_turn(
                role="tool",
                content=call.name,
                started_at=_ts(call.created_at),
                ended_at=_ts(output.created_at),
                tool_name=call.name,
                tool_arguments=_json_or_text(call.arguments),
                tool_result={"output": output.output, "is_error": output.is_error},
            )

    async def finish(self, end_reason: str) -> None:
        """Complete the call and wait until everything queued is stored. Safe to call twice."""
        if self._finished or self._writer is None:
            return
        self._finished = True
        self._queue.put_nowait(
            lambda: calls.complete_call(self._pool, self._meta.call_id, end_reason=end_reason)
        )
        self._queue.put_nowait(None)
        await self._writer

    async def _drain(self) -> None:
        while (write := await self._queue.get()) is not None:
            for attempt, delay in enumerate((*_RETRY_DELAYS, None)):
                try:
                    await write()
                    break
                except Exception:
                    if delay is None:
                        logger.exception(
                            "giving up on a call record write", extra={"call_id": str(self.call_id)}
                        )
                        break
                    logger.warning("call record write failed (attempt %d), retrying", attempt + 1)
                    await asyncio.sleep(delay)
