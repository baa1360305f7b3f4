"""The emulator web app: every provider's routes plus the JSON control API tests drive.

Control API (all JSON):
  POST /_emulator/reset     clear scripts, faults, latencies and the log
  POST /_emulator/script    {"stt": [...], "llm": [{"text"}|{"tool_calls": [...]}|{"when", ...}],
                             "stt_default": "hello", "stt_lengths": {"line": 1.8}}  appends to the
                            queues; stt_lengths: voiced seconds each line takes to say (a provider
                            that heard less of it transcribes only its trailing words)
  POST /_emulator/latency   {"provider": "llm", "first_ms": 375, "rate": 40} or
                            {"stt": {"first_ms": 350, "silence_ms": 300}, "tts": {...}}
  POST /_emulator/fault     {"provider": "llm", "kind": "http_500"|"stall"|"disconnect", "count": 1,
                             "after": 1}  after: TTS audio chunks (0.1 s each) sent before a disconnect
                            providers: stt, llm, tts, embeddings, realtime and the fallbacks
                            openai_stt (/v1/audio/transcriptions), openai_tts (/v1/audio/speech),
                            llm_fallback (/fallback/v1/chat/completions)
  GET  /_emulator/log       {"entries": [...]}; ?provider=llm filters
  GET  /_emulator/state     scripts left, latencies, faults
  GET  /_emulator/health    readiness
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .deepgram_stt import DeepgramEmulator
from .elevenlabs_tts import ElevenLabsEmulator
from .openai_api import OpenAIEmulator
from .openai_audio import OpenAIAudioEmulator
from .openai_realtime import RealtimeEmulator
from .state import EmulatorState

log = logging.getLogger("emulators")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE_KEY = web.AppKey("state", EmulatorState)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        raise
    finally:
        if not request.path.startswith("/_emulator/health"):
            status = getattr(locals().get("resp"), "status", "-")
            log.info(
                "%s %s -> %s (%.0f ms)",
                request.method,
                request.path,
                status,
                (time.monotonic() - started) * 1000,
            )
    return resp


@web.middleware
async def bad_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn malformed control requests into 400s with the reason, not 500s."""
    try:
        return await handler(request)
    except (ValueError, KeyError, TypeError) as exc:
        if not request.path.startswith("/_emulator/"):
            raise
        return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)


class ControlAPI:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_emulator/health", self.health),
            web.post("/_emulator/reset", self.reset),
            web.post("/_emulator/script", self.script),
            web.post("/_emulator/latency", self.latency),
            web.post("/_emulator/fault", self.fault),
            web.get("/_emulator/log", self.log),
            web.get("/_emulator/state", self.snapshot),
        ]

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"ok": True})

    async def script(self, request: web.Request) -> web.Response:
        self.state.add_script(await request.json())
        return web.json_response(self.state.snapshot())

    async def latency(self, request: web.Request) -> web.Response:
        self.state.set_latency(await request.json())
        return web.json_response(self.state.snapshot())

    async def fault(self, request: web.Request) -> web.Response:
        self.state.set_fault(await request.json())
        return web.json_response(self.state.snapshot())

    async def log(self, request: web.Request) -> web.Response:
        return web.json_response({"entries": self.state.log(request.query.get("provider"))})

    async def snapshot(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot())


def build_app(state: EmulatorState | None = None) -> web.Application:
    state = state or EmulatorState()
    app = web.Application(middlewares=[access_log, bad_request], client_max_size=64 * 1024**2)
    app[STATE_KEY] = state
    for part in (
        ControlAPI(state),
        OpenAIEmulator(state),
        OpenAIEmulator(state, provider="llm_fallback", prefix="/fallback"),
        OpenAIAudioEmulator(state),
        DeepgramEmulator(state),
        ElevenLabsEmulator(state),
        RealtimeEmulator(state),
    ):
        app.add_routes(part.routes())
    return app
