"""ElevenLabs emulator: the ``multi-stream-input`` WebSocket behind ``elevenlabs.TTS.stream()``
and the HTTP ``/text-to-speech/{voice}/stream`` endpoint behind ``synthesize()``.

WebSocket protocol as the plugin speaks it: per ``context_id`` it first sends ``{"text": " "}``
with voice settings, then text pieces (``flush: true`` per sentence in auto mode), then an
empty flush and ``close_context``. The emulator buffers text per context, speaks each flushed
piece with espeak-ng (``speech.py``) in the requested ``output_format`` and answers
``{"audio": b64, "normalizedAlignment": ..., "alignment": ..., "context_id"}`` messages, then
``{"isFinal": true, "context_id"}`` once the context is closed and drained.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import faults, speech
from .state import EmulatorState

DEFAULT_VOICE_ID = "hpp4J3VqNfWAUOO0d1Us"
AUTO_CHUNK_CHARS = 120  # first step of ElevenLabs' default chunk_length_schedule
_FINAL = object()


def _unauthorized(request: web.Request) -> web.Response | None:
    if not (
        request.headers.get("xi-api-key")
        or request.query.get("xi_api_key")
        or request.headers.get("Authorization")
    ):
        body = {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        return web.json_response(body, status=401)
    return None


def _server_error() -> web.Response:
    return web.json_response(
        {"detail": {"status": "internal_error", "message": "emulated failure"}},
        status=500,
        headers={"x-trace-id": uuid.uuid4().hex},
    )


def alignment(text: str, offset_ms: float, duration_ms: float) -> dict[str, list[Any]]:
    """Characters spread evenly over the audio: good enough for word-timed transcripts."""
    chars = list(text)
    step = duration_ms / max(1, len(chars))
    return {
        "chars": chars,
        "charStartTimesMs": [round(offset_ms + i * step) for i in range(len(chars))],
        "charsDurationsMs": [max(1, round(step))] * len(chars),
    }


@dataclass
class _Context:
    context_id: str
    fault: str | None = None  # faults apply per context: the plugin reuses one socket
    cut_after: int = 1  # "disconnect": audio chunks sent in this context before the cut
    chunks_sent: int = 0
    buffer: str = ""
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    audio_ms: float = 0.0  # audio already sent in this context, for alignment offsets
    paced_until: float = 0.0  # monotonic end of the audio already paced out (rate > 0)
    closed: bool = False


class MultiStreamSession:
    """One multi-context WebSocket: a worker task per context keeps each context in order."""

    def __init__(self, state: EmulatorState, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.state = state
        self.request = request
        self.ws = ws
        self.output_format = request.query.get("output_format", "mp3_44100_128")
        self.auto_mode = request.query.get("auto_mode", "false").lower() == "true"
        self.contexts: dict[str, _Context] = {}
        self.dropped = False

    def context(self, context_id: str) -> _Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            fault = self.state.take("tts")
            ctx = self.contexts[context_id] = _Context(
                context_id, fault.kind if fault else None, fault.after if fault else 1
            )
            ctx.task = asyncio.create_task(self._worker(ctx))
            if ctx.fault == "http_500":  # the server-side error ElevenLabs reports in-band
                ctx.closed = True
                self.state.record("tts", "error", api="websocket", context_id=context_id)
                error = {"error": "internal_error", "message": "emulated failure", "code": 500}
                ctx.queue.put_nowait({**error, "context_id": context_id})
        return ctx

    def on_message(self, data: dict[str, Any]) -> None:
        ctx = self.context(str(data.get("context_id") or data.get("contextId") or "default"))
        if ctx.closed:
            return
        if data.get("close_context"):
            self._enqueue(ctx, ctx.buffer)
            ctx.buffer, ctx.closed = "", True
            ctx.queue.put_nowait(_FINAL)
            return
        ctx.buffer += str(data.get("text") or "")
        if data.get("flush") or (self.auto_mode and ctx.buffer.rstrip().endswith((".", "!", "?"))):
            self._enqueue(ctx, ctx.buffer)
            ctx.buffer = ""
        elif len(ctx.buffer) >= AUTO_CHUNK_CHARS and " " in ctx.buffer.strip():
            cut = ctx.buffer.rstrip().rfind(" ") + 1
            self._enqueue(ctx, ctx.buffer[:cut])
            ctx.buffer = ctx.buffer[cut:]

    def _enqueue(self, ctx: _Context, text: str) -> None:
        if text.strip():
            ctx.queue.put_nowait((text, time.monotonic()))

    async def _worker(self, ctx: _Context) -> None:
        while True:
            job = await ctx.queue.get()
            if isinstance(job, dict):  # an error message
                await self._send(job, ctx)
            elif job is _FINAL:
                await self._send({"isFinal": True, "context_id": ctx.context_id}, ctx)
                self.contexts.pop(ctx.context_id, None)
                return
            else:
                await self._generate(ctx, *job)

    async def _send(self, msg: dict[str, Any], ctx: _Context) -> None:
        if ctx.fault == "stall" or self.dropped or self.ws.closed:
            return
        try:
            await self.ws.send_str(json.dumps(msg))
        except ConnectionResetError:  # the client went away (interruption, shutdown)
            self.dropped = True

    async def _generate(self, ctx: _Context, text: str, requested: float) -> None:
        audio, duration = await speech.synthesize(text, self.output_format)
        latency = self.state.latency["tts"]
        # With a rate, a context's pieces are paced back to back: a sentence does not start
        # before the previous one's audio was streamed out at that rate.
        first_at = max(requested + latency.first_ms / 1000, ctx.paced_until)
        entry = self.state.record(
            "tts",
            "synthesize",
            api="websocket",
            text=text.strip(),
            context_id=ctx.context_id,
            output_format=self.output_format,
            duration=round(duration, 3),
            fault=ctx.fault,
        )
        chunks = speech.chunk_bytes(audio, duration)
        char_starts = alignment(text, 0, duration * 1000)["charStartTimesMs"]
        prev_end, next_char = 0.0, 0
        for i, (piece, end) in enumerate(chunks):
            wait = first_at + (prev_end / latency.rate if latency.rate > 0 else 0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last = i == len(chunks) - 1
            upto = (
                len(text)
                if last
                else next((j for j in range(next_char, len(text)) if char_starts[j] >= end * 1000), len(text))
            )
            msg: dict[str, Any] = {"audio": base64.b64encode(piece).decode(), "context_id": ctx.context_id}
            if upto > next_char:
                start_ms = ctx.audio_ms + char_starts[next_char]
                span_ms = (duration * 1000 if last else end * 1000) - char_starts[next_char]
                align = alignment(text[next_char:upto], start_ms, span_ms)
                msg["normalizedAlignment"] = msg["alignment"] = align
                next_char = upto
            if i == 0:
                entry["first_byte_at"] = time.time()
            await self._send(msg, ctx)
            ctx.chunks_sent += 1
            if ctx.fault == "disconnect" and ctx.chunks_sent >= ctx.cut_after:
                self.drop()
                return
            prev_end = end
        ctx.audio_ms += duration * 1000
        if latency.rate > 0:
            ctx.paced_until = first_at + duration / latency.rate

    def drop(self) -> None:
        """Cut the TCP connection without a close frame, like a network failure."""
        self.dropped = True
        self.state.record("tts", "disconnect", api="websocket")
        faults.drop(self.request)

    async def finish(self) -> None:
        tasks = [c.task for c in self.contexts.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ElevenLabsEmulator:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/text-to-speech/{voice_id}/multi-stream-input", self.multi_stream),
            web.post("/v1/text-to-speech/{voice_id}/stream", self.http_stream),
            web.post("/v1/text-to-speech/{voice_id}", self.http_stream),
            web.get("/v1/voices", self.voices),
        ]

    async def voices(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "voices": [
                    {"voice_id": DEFAULT_VOICE_ID, "name": "Emulated espeak-ng", "category": "premade"},
                ]
            }
        )

    async def multi_stream(self, request: web.Request) -> web.StreamResponse:
        if (denied := _unauthorized(request)) is not None:
            return denied
        try:
            speech.parse_output_format(request.query.get("output_format", "mp3_44100_128"))
        except ValueError as exc:
            return web.json_response(
                {"detail": {"status": "invalid_output_format", "message": str(exc)}}, status=400
            )
        fault = self.state.take_fault("tts", kinds=("http_500",))
        self.state.record("tts", "connect", api="websocket", params=dict(request.query), fault=fault)
        if fault == "http_500":
            return _server_error()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = MultiStreamSession(self.state, request, ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("close_socket"):
                    break
                session.on_message(data)
        finally:
            await session.finish()
        return ws

    async def http_stream(self, request: web.Request) -> web.StreamResponse:
        if (denied := _unauthorized(request)) is not None:
            return denied
        output_format = request.query.get("output_format", "mp3_44100_128")
        try:
            codec, _, _ = speech.parse_output_format(output_format)
        except ValueError as exc:
            return web.json_response(
                {"detail": {"status": "invalid_output_format", "message": str(exc)}}, status=400
            )
        body = await request.json()
        text = str(body.get("text") or "")
        requested = time.monotonic()
        fault = self.state.take_fault("tts")
        entry = self.state.record(
            "tts",
            "synthesize",
            api="http",
            text=text.strip(),
            output_format=output_format,
            model=body.get("model_id"),
            fault=fault,
        )
        if fault == "http_500":
            return _server_error()
        audio, duration = await speech.synthesize(text, output_format)
        entry["duration"] = round(duration, 3)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "audio/mpeg" if codec == "mp3" else "audio/pcm",
                "x-trace-id": uuid.uuid4().hex,
            }
        )
        latency = self.state.latency["tts"]
        first_at = requested + latency.first_ms / 1000
        if (wait := first_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        await resp.prepare(request)
        if fault == "stall":
            await faults.stall(request)
            return resp
        try:
            await self._write_paced(request, resp, audio, duration, first_at, entry, fault)
        except ConnectionResetError:  # the client stopped listening (interruption)
            pass
        return resp

    async def _write_paced(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        audio: bytes,
        duration: float,
        first_at: float,
        entry: dict[str, Any],
        fault: str | None,
    ) -> None:
        rate = self.state.latency["tts"].rate
        prev_end = 0.0
        for i, (piece, end) in enumerate(speech.chunk_bytes(audio, duration)):
            wait = first_at + (prev_end / rate if rate > 0 else 0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if i == 0:
                entry["first_byte_at"] = time.time()
            await resp.write(piece)
            if fault == "disconnect":  # part of the audio, then the connection is gone
                faults.drop(request)
                return
            prev_end = end
        await resp.write_eof()
