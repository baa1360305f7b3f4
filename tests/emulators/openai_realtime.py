"""OpenAI Realtime (GA protocol) over WebSocket, enough for LiveKit's ``RealtimeModel``.

Written from docs/notes/realtime_protocol.md and driven by the real plugin in the realtime e2e
tests. The caller's speech is found with the same energy endpointer as the Deepgram emulator and
"transcribed" from the STT script; answers come from the LLM script (``when``) and are spoken
with the same espeak-ng rendering as the TTS emulator, at 24 kHz. Server VAD answers a turn only
with ``create_response`` on; ``max_output_tokens`` ends a reply early (``incomplete``), counting
a text token per token and AUDIO_TOKENS_PER_SECOND of speech.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from . import speech
from .endpointing import EnergyEndpointer
from .openai_api import _check_auth, _openai_error, _tokens, answer_from_tool, default_answer, last_user_text
from .state import EmulatorState

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000
# Output tokens counted against max_output_tokens: one per text token, and audio at this rate.
AUDIO_TOKENS_PER_SECOND = 20
# How the agent asks for a fixed line in the model's own voice (agent/speech.py).
VERBATIM = re.compile(r'word for word and nothing else: "(.*)"\s*$', re.DOTALL)


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Partial session.update: nested dicts merge, everything else replaces."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class RealtimeEmulator:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/realtime", self.realtime)]

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        if (denied := _check_auth(request)) is not None:
            return denied
        fault = self.state.take_fault("realtime", ("http_500",))
        self.state.record("realtime", "connect", model=request.query.get("model"), fault=fault)
        if fault == "http_500":
            return _openai_error(500, "emulated failure")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024**2)
        await ws.prepare(request)
        conn = RealtimeConnection(self.state, ws, request)
        await conn.send({"type": "session.created", "session": conn.session})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.handle(json.loads(msg.data))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await conn.close()
        return ws


class RealtimeConnection:
    """One client connection: its session, conversation, turn detection and the reply in progress."""

    def __init__(self, state: EmulatorState, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.state = state
        self.ws = ws
        self.request = request
        self.session: dict[str, Any] = {"type": "realtime", "id": _id("sess"), "output_modalities": ["audio"]}
        self.items: list[dict[str, Any]] = []
        self.transcripts: dict[str, str] = {}  # user item id -> scripted transcript
        self.audio_ms: dict[str, int] = {}  # assistant item id -> audio length
        self.buffered = b""  # audio since the last commit (client-side turns)
        lat = state.latency["stt"]
        self.endpointer = EnergyEndpointer(SAMPLE_RATE, threshold=lat.threshold, silence_ms=lat.silence_ms)
        self.user_item: str | None = None
        self.response: asyncio.Task[None] | None = None
        self.cancel_reason: str | None = None
        self.budget: float | None = None  # the reply's output tokens left (max_output_tokens)
        self._lock = asyncio.Lock()

    # plumbing ----------------------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", _id("event"))
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(event))

    async def error(self, code: str, message: str, event_id: str | None = None) -> None:
        err = {"type": "invalid_request_error", "code": code, "message": message, "event_id": event_id}
        await self.send({"type": "error", "error": err})

    async def close(self) -> None:
        if self.response is not None:
            self.response.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.response

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return ((self.session.get("audio") or {}).get("input") or {}).get("turn_detection")

    @property
    def modality(self) -> str:
        return (self.session.get("output_modalities") or ["audio"])[0]

    def tail(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    async def add_item(self, item: dict[str, Any], previous: str | None = "") -> None:
        """Insert after ``previous`` ("" = at the end, "root" or None = at the head), then ack."""
        if previous == "":
            previous = self.tail()
        if previous in (None, "root"):
            self.items.insert(0, item)
            previous = None
        else:
            index = next((i for i, it in enumerate(self.items) if it["id"] == previous), len(self.items) - 1)
            self.items.insert(index + 1, item)
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})

    # client events -------------------------------------------------------------------------------
    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        handler = getattr(self, "on_" + kind.replace(".", "_"), None)
        if handler is None:
            await self.error("unknown_event", f"unsupported event type {kind!r}", event.get("event_id"))
            return
        await handler(event)

    async def on_session_update(self, event: dict[str, Any]) -> None:
        _merge(self.session, event.get("session") or {})
        self.state.record("realtime", "session", session=self.session)
        await self.send({"type": "session.updated", "session": self.session})

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        pcm = base64.b64decode(event.get("audio") or "")
        self.buffered += pcm
        if self.turn_detection is None:
            return
        for ev in self.endpointer.feed(pcm):
            if ev.kind == "start":
                await self.speech_started(ev.start)
            elif ev.kind == "end":
                await self.speech_stopped(
                    ev.end, respond=bool(self.turn_detection.get("create_response", True))
                )

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if len(self.buffered) < 100 * BYTES_PER_MS:
            await self.error("input_audio_buffer_commit_empty", "buffer too small", event.get("event_id"))
            return
        await self.speech_started(0.0)
        await self.speech_stopped(len(self.buffered) / (1000 * BYTES_PER_MS), respond=False)

    async def on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.buffered = b""
        await self.send({"type": "input_audio_buffer.cleared"})

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = dict(event.get("item") or {})
        item.setdefault("id", _id("item"))
        if any(it["id"] == item["id"] for it in self.items):
            await self.error("item_create_duplicate_item_id", "duplicate item id", event.get("event_id"))
            return
        item.setdefault("status", "completed")
        self.state.record("realtime", "item", item_type=item.get("type"), role=item.get("role"), item=item)
        await self.add_item(item, event.get("previous_item_id", ""))

    async def on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        before = len(self.items)
        self.items = [it for it in self.items if it["id"] != item_id]
        if len(self.items) == before:
            await self.error("item_delete_invalid_item_id", f"no item {item_id}", event.get("event_id"))
            return
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        heard_ms = max(0, min(int(event.get("audio_end_ms") or 0), self.audio_ms.get(item_id, 0)))
        for item in self.items:
            if item["id"] == item_id and item.get("content"):
                part = item["content"][0]
                words = (part.get("transcript") or "").split()
                total = self.audio_ms.get(item_id) or 1
                part["transcript"] = " ".join(words[: round(len(words) * heard_ms / total)])
        self.state.record("realtime", "truncate", item_id=item_id, audio_end_ms=heard_ms)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": heard_ms,
            }
        )

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None and not self.response.done():
            await self.error(
                "conversation_already_has_active_response", "a response is in progress", event.get("event_id")
            )
            return
        self.start_response(event.get("response") or {})

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        if self.response is None or self.response.done():
            await self.error("response_cancel_not_active", "Cancellation failed: no active response found")
            return
        await self.cancel("client_cancelled")

    # turns ----------------------------------------------------------------------------------------
    async def speech_started(self, at_s: float) -> None:
        self.user_item = _id("item")
        self.transcripts[self.user_item], _ = self.state.next_transcript()
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": int(at_s * 1000),
                "item_id": self.user_item,
            }
        )
        td = self.turn_detection or {}
        if self.response is not None and not self.response.done() and td.get("interrupt_response", True):
            await self.cancel("turn_detected")

    async def speech_stopped(self, at_s: float, *, respond: bool) -> None:
        item_id = self.user_item or _id("item")
        self.user_item = None
        self.buffered = b""
        previous = self.tail()
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(at_s * 1000),
                "item_id": item_id,
            }
        )
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
        )
        transcript = self.transcripts.get(item_id, self.state.stt_default)
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": transcript}],
        }
        await self.add_item(item)
        first_ms = self.state.latency["stt"].first_ms
        if first_ms:
            await asyncio.sleep(first_ms / 1000)
        self.state.record("realtime", "utterance", text=transcript)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(at_s, 3)},
            }
        )
        if respond and (self.response is None or self.response.done()):
            self.start_response({})

    # responses --------------------------------------------------------------------------------------
    def start_response(self, options: dict[str, Any]) -> None:
        self.cancel_reason = None
        self.response = asyncio.create_task(self.respond(options))

    async def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        if self.response is not None:
            self.response.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.response

    def messages(self) -> list[dict[str, Any]]:
        """The conversation as chat-completions messages, for the LLM script and its helpers."""
        out: list[dict[str, Any]] = []
        for item in self.items:
            if item.get("type") == "function_call_output":
                out.append({"role": "tool", "content": item.get("output", "")})
            elif item.get("type") == "message":
                text = " ".join(
                    str(p.get("text") or p.get("transcript") or "") for p in item.get("content") or []
                )
                out.append({"role": item.get("role"), "content": text})
        return out

    async def respond(self, options: dict[str, Any]) -> None:
        response_id = _id("resp")
        fault = self.state.take_fault("realtime", ("stall", "disconnect"))
        if fault == "stall":
            self.state.record("realtime", "response", fault=fault)
            return  # never answers: the client gives up on generate_reply after 10 s
        output: list[dict[str, Any]] = []
        created = {
            "id": response_id,
            "object": "realtime.response",
            "status": "in_progress",
            "output": [],
            "metadata": options.get("metadata"),
            "output_modalities": [self.modality],
        }
        await self.send({"type": "response.created", "response": created})
        status = "completed"
        cap = options.get("max_output_tokens", self.session.get("max_output_tokens"))
        self.budget = cap if isinstance(cap, int) else None  # "inf": no limit
        try:
            messages = self.messages()
            verbatim = VERBATIM.search(str(options.get("instructions") or ""))
            # A model told to say a line says it; otherwise the script answers the caller.
            answer = (
                {"text": verbatim.group(1)}
                if verbatim
                else self.state.next_llm_item(last_user_text(messages))
            )
            tool_choice = options.get("tool_choice", "auto")
            self.state.record(
                "realtime",
                "response",
                last_user=last_user_text(messages),
                instructions=self.session.get("instructions"),
                answer=answer,
                tool_choice=tool_choice,
                verbatim=verbatim is not None,
                messages=messages,  # the conversation the model answered from
            )
            if answer and answer.get("tool_calls") and tool_choice != "none":
                for call in answer["tool_calls"]:
                    output.append(await self.function_call(response_id, call))
            else:
                if answer and answer.get("answer_from_tool"):
                    text = answer_from_tool(messages)
                else:
                    text = str(answer["text"]) if answer else default_answer(messages)
                output.append(await self.message(response_id, text, drop=fault == "disconnect"))
            if self.budget is not None and self.budget < 0:
                status = "incomplete"
        except asyncio.CancelledError:
            status = "cancelled"
        finally:
            done: dict[str, Any] = {
                "id": response_id,
                "object": "realtime.response",
                "status": status,
                "output": output,
            }
            if status == "cancelled":
                done["status_details"] = {
                    "type": "cancelled",
                    "reason": self.cancel_reason or "client_cancelled",
                }
            elif status == "incomplete":
                done["status_details"] = {"type": "incomplete", "reason": "max_output_tokens"}
            done["usage"] = {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0}
            await self.send({"type": "response.done", "response": done})

    async def function_call(self, response_id: str, call: dict[str, Any]) -> dict[str, Any]:
        args = call.get("arguments", {})
        item = {
            "id": _id("item"),
            "type": "function_call",
            "status": "in_progress",
            "call_id": call.get("id") or _id("call"),
            "name": call["name"],
            "arguments": "",
        }
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await self.add_item(item)
        item = {
            **item,
            "status": "completed",
            "arguments": args if isinstance(args, str) else json.dumps(args),
        }
        await self.send(
            {"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": item}
        )
        return item

    async def message(self, response_id: str, text: str, *, drop: bool) -> dict[str, Any]:
        item_id = _id("item")
        audio = self.modality == "audio"
        part_type = "audio" if audio else "text"
        item: dict[str, Any] = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        refs = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        llm = self.state.latency["llm"]
        if llm.first_ms:
            await asyncio.sleep(llm.first_ms / 1000)
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await self.add_item(item)
        await self.send({"type": "response.content_part.added", **refs, "part": {"type": part_type}})
        spoken = ""
        try:
            if audio:
                spoken = await self.speak(refs, text, drop=drop)
            else:
                tokens = _tokens(text)
                for i, token in enumerate(tokens):
                    if drop and i == len(tokens) // 2:
                        self.drop()
                    if not self.spend(1):
                        break
                    await self.send({"type": "response.output_text.delta", **refs, "delta": token})
                    spoken += token
                    if llm.rate:
                        await asyncio.sleep(1 / llm.rate)
                await self.send({"type": "response.output_text.done", **refs, "text": spoken})
        finally:
            key = "transcript" if audio else "text"
            content = [{"type": "output_audio" if audio else "output_text", key: spoken.strip()}]
            item.update(
                status="completed" if spoken.strip() == text.strip() else "incomplete", content=content
            )
            await self.send(
                {
                    "type": "response.output_item.done",
                    "response_id": response_id,
                    "output_index": 0,
                    "item": item,
                }
            )
        return item

    def spend(self, tokens: float) -> bool:
        """Count output tokens against max_output_tokens; False once the reply must stop there."""
        if self.budget is None:
            return True
        self.budget -= tokens
        return self.budget >= 0

    def drop(self) -> None:
        """The connection breaks in the middle of a reply."""
        self.state.record("realtime", "dropped")
        if self.request.transport is not None:
            self.request.transport.abort()
        raise asyncio.CancelledError

    async def speak(self, refs: dict[str, Any], text: str, *, drop: bool) -> str:
        """Audio deltas paced like the TTS emulator, with the transcript keeping up with the audio."""
        pcm = await speech.synthesize_pcm(text, SAMPLE_RATE)
        duration = len(pcm) / BYTES_PER_MS / 1000 if pcm else 0.0
        self.audio_ms[refs["item_id"]] = int(duration * 1000)
        tokens = _tokens(text)
        chunks = speech.chunk_bytes(pcm, duration)
        rate = self.state.latency["tts"].rate
        spoken, sent = "", 0
        capped = False
        for i, (chunk, until) in enumerate(chunks):
            if drop and i == 2:
                self.drop()
            want = round(len(tokens) * until / duration) if duration else len(tokens)
            seconds = until - (chunks[i - 1][1] if i else 0.0)
            if not self.spend(seconds * AUDIO_TOKENS_PER_SECOND + max(0, want - sent)):
                capped = True  # max_output_tokens: the reply stops mid-sentence
                self.audio_ms[refs["item_id"]] = int((until - seconds) * 1000)
                break
            for token in tokens[sent:want]:
                await self.send({"type": "response.output_audio_transcript.delta", **refs, "delta": token})
                spoken += token
            sent = max(sent, want)
            await self.send(
                {"type": "response.output_audio.delta", **refs, "delta": base64.b64encode(chunk).decode()}
            )
            if rate:
                await asyncio.sleep(seconds / rate)
        for token in [] if capped else tokens[sent:]:
            await self.send({"type": "response.output_audio_transcript.delta", **refs, "delta": token})
            spoken += token
        await self.send({"type": "response.output_audio.done", **refs})
        await self.send({"type": "response.output_audio_transcript.done", **refs, "transcript": spoken})
        return spoken
