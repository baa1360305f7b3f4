"""Deepgram emulator: the live ``/v1/listen`` WebSocket that ``deepgram.STT`` (v1) streams to,
plus the pre-recorded ``POST /v1/listen`` that its ``recognize()`` uses.

The caller's PCM is endpointed by energy (see ``endpointing.py``). At speech start the next
scripted transcript is bound to the utterance (so concurrent calls never share one), a
``SpeechStarted`` is sent (``vad_events``), interim ``Results`` reveal its words while speech
continues, and once the caller is quiet the final ``Results`` (``is_final`` and
``speech_final``) go out ``first_ms`` after the last voiced audio, followed by
``UtteranceEnd`` when ``utterance_end_ms`` was requested. ``Finalize`` ends the utterance
without waiting for the silence endpointer (the final still honours ``first_ms``). A line
with a scripted length heard only in part is transcribed in part (``EmulatorState.heard_part``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import uuid
import wave
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from . import faults
from .endpointing import EndpointEvent, EnergyEndpointer, rms
from .state import EmulatorState

MODEL_UUID = "00000000-0000-4000-8000-00000000e3a1"
CONFIDENCE = 0.98
MID_UTTERANCE_S = 0.5  # a "disconnect" fault cuts the socket this far into an utterance


def _flag(query: Any, name: str, default: bool) -> bool:
    value = query.get(name)
    return default if value is None else value.lower() not in ("false", "0", "")


def words_payload(transcript: str, start: float, end: float) -> list[dict[str, Any]]:
    """Deepgram ``words``: lowercase ``word``, formatted ``punctuated_word``, even timing."""
    tokens = transcript.split()
    if not tokens:
        return []
    step = max(end - start, 0.05 * len(tokens)) / len(tokens)
    out = []
    for i, token in enumerate(tokens):
        bare = "".join(ch for ch in token.lower() if ch.isalnum() or ch == "'") or token.lower()
        out.append(
            {
                "word": bare,
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": CONFIDENCE,
                "punctuated_word": token,
            }
        )
    return out


def _alternative(transcript: str, start: float, end: float) -> dict[str, Any]:
    return {
        "transcript": transcript,
        "confidence": CONFIDENCE if transcript else 0.0,
        "words": words_payload(transcript, start, end),
    }


class _Utterance:
    def __init__(self, transcript: str, scripted: bool, start: float) -> None:
        self.transcript = transcript
        self.scripted = scripted
        self.start = start
        self.end = start
        self.last_voice_wall = time.monotonic()


class ListenSession:
    """One live WebSocket: endpointing state and what has been sent."""

    def __init__(self, state: EmulatorState, ws: web.WebSocketResponse, query: Any, request_id: str) -> None:
        self.state = state
        self.ws = ws
        self.request_id = request_id
        self.sample_rate = int(query.get("sample_rate", 16000))
        self.channels = int(query.get("channels", 1))
        self.interim = _flag(query, "interim_results", False)
        self.vad_events = _flag(query, "vad_events", False)
        self.utterance_end = query.get("utterance_end_ms") is not None
        lat = state.latency["stt"]
        self.first_s = lat.first_ms / 1000
        self.endpointer = EnergyEndpointer(
            self.sample_rate, self.channels, threshold=lat.threshold, silence_ms=lat.silence_ms
        )
        self.current: _Utterance | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.undelivered: list[_Utterance] = []

    def give_back(self) -> None:
        """Return transcripts never delivered (socket dropped or closed) to the script queue,
        so a fault or an early hang-up does not shift every later scripted line."""
        lost = [u.transcript for u in self.undelivered if u.scripted]
        if self.current is not None and self.current.scripted:
            lost.append(self.current.transcript)
        self.state.stt_script.extendleft(reversed(lost))
        self.undelivered.clear()
        self.current = None

    def _results(
        self,
        utt: _Utterance | None,
        text: str,
        *,
        final: bool,
        speech_final: bool,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        start = utt.start if utt else self.endpointer.time
        end = utt.end if utt else self.endpointer.time
        return {
            "type": "Results",
            "channel_index": [0, self.channels],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [_alternative(text, start, end)]},
            "metadata": {
                "request_id": self.request_id,
                "model_uuid": MODEL_UUID,
                "model_info": {"name": "general-nova-3", "version": "emulator", "arch": "nova-3"},
            },
        }

    async def send(self, msg: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionResetError):  # the caller hung up meanwhile
                await self.ws.send_str(json.dumps(msg))

    async def on_audio(self, pcm: bytes) -> None:
        for event in self.endpointer.feed(pcm):
            await self.on_event(event)
        if self.current is not None and rms(pcm, self.channels) >= self.endpointer.threshold:
            self.current.last_voice_wall = time.monotonic()

    async def on_event(self, event: EndpointEvent) -> None:
        if event.kind == "start":
            self.current = _Utterance(*self.state.next_transcript(), event.start)
            if self.vad_events:
                await self.send({"type": "SpeechStarted", "channel": [0], "timestamp": round(event.start, 3)})
        elif event.kind == "interim" and self.current is not None:
            self.current.end = event.end
            if self.interim:
                words = self.current.transcript.split()
                shown = max(1, min(len(words), int((event.end - event.start) * 2.5)))
                await self.send(
                    self._results(self.current, " ".join(words[:shown]), final=False, speech_final=False)
                )
        elif event.kind == "end":
            self.finish(event, from_finalize=False)

    def finish(self, event: EndpointEvent, *, from_finalize: bool) -> None:
        utt, self.current = self.current, None
        if utt is None:
            return
        utt.end = event.end
        self.undelivered.append(utt)
        delay = max(0.0, utt.last_voice_wall + self.first_s - time.monotonic())
        task = asyncio.create_task(self._send_final(utt, delay, from_finalize))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _send_final(self, utt: _Utterance, delay: float, from_finalize: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.undelivered.remove(utt)
        text = self.state.heard_part(utt.transcript, utt.end - utt.start)
        await self.send(self._results(utt, text, final=True, speech_final=True, from_finalize=from_finalize))
        self.state.record(
            "stt",
            "utterance",
            text=text,
            audio_start=round(utt.start, 3),
            audio_end=round(utt.end, 3),
            from_finalize=from_finalize,
            request_id=self.request_id,
        )
        if self.utterance_end:
            await self.send(
                {"type": "UtteranceEnd", "channel": [0, self.channels], "last_word_end": round(utt.end, 3)}
            )

    async def finalize(self) -> None:
        if self.current is not None:
            self.finish(self.endpointer.force_end(), from_finalize=True)
        elif not self.pending:
            await self.send(self._results(None, "", final=True, speech_final=False, from_finalize=True))

    async def close(self) -> None:
        await self.finalize()
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        await self.send(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.request_id,
                "sha256": uuid.uuid4().hex,
                "created": datetime.now(UTC).isoformat(),
                "duration": round(self.endpointer.time, 3),
                "channels": self.channels,
                "models": [MODEL_UUID],
                "model_info": {
                    MODEL_UUID: {"name": "general-nova-3", "version": "emulator", "arch": "nova-3"}
                },
            }
        )


def _unauthorized(request: web.Request) -> web.Response | None:
    auth = request.headers.get("Authorization", "")
    if not (auth.startswith("Token ") or auth.startswith("Bearer ")):
        return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401)
    return None


class DeepgramEmulator:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/listen", self.listen), web.post("/v1/listen", self.prerecorded)]

    async def listen(self, request: web.Request) -> web.StreamResponse:
        if (denied := _unauthorized(request)) is not None:
            return denied
        # A refused handshake is decided here; a stall or a drop hits the next utterance spoken
        # on a live socket, so a test can set it mid-call and have it strike mid-utterance.
        fault = self.state.take_fault("stt", kinds=("http_500",))
        request_id = str(uuid.uuid4())
        self.state.record("stt", "connect", params=dict(request.query), fault=fault, request_id=request_id)
        if fault == "http_500":
            return web.json_response({"err_code": "INTERNAL", "err_msg": "emulated failure"}, status=500)
        ws = web.WebSocketResponse()
        ws.headers["dg-request-id"] = request_id
        await ws.prepare(request)
        session = ListenSession(self.state, ws, request.query, request_id)
        async for msg in ws:
            if fault == "stall":
                continue  # the socket stays open and hears everything, and answers nothing
            if msg.type == WSMsgType.BINARY:
                before = session.current
                await session.on_audio(msg.data)
                utt = session.current
                if utt is not None and utt is not before and fault is None:
                    fault = self.state.take_fault("stt", kinds=("stall", "disconnect"))
                    if fault == "stall":
                        self.state.record("stt", "stall", request_id=request_id)
                if (
                    fault == "disconnect"
                    and utt is not None
                    and session.endpointer.time - utt.start >= MID_UTTERANCE_S
                ):
                    self.state.record("stt", "disconnect", request_id=request_id)
                    faults.drop(request)
                    break
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type")
                if kind == "Finalize":
                    await session.finalize()
                elif kind == "CloseStream":
                    await session.close()
                    await ws.close()
                    break
        for task in session.pending:
            task.cancel()
        session.give_back()
        return ws

    async def prerecorded(self, request: web.Request) -> web.Response:
        if (denied := _unauthorized(request)) is not None:
            return denied
        fault = self.state.take_fault("stt")
        if fault == "http_500":
            return web.json_response({"err_code": "INTERNAL", "err_msg": "emulated failure"}, status=500)
        data = await request.read()
        try:
            with wave.open(io.BytesIO(data)) as wav:
                pcm, channels = wav.readframes(wav.getnframes()), wav.getnchannels()
                duration = wav.getnframes() / wav.getframerate()
        except (wave.Error, EOFError):
            pcm, channels, duration = data, 1, len(data) / 32000
        heard = rms(pcm, channels) >= self.state.latency["stt"].threshold
        transcript = self.state.next_transcript()[0] if heard else ""
        self.state.record("stt", "recognize", text=transcript, duration=round(duration, 3))
        if first_ms := self.state.latency["stt"].first_ms:
            await asyncio.sleep(first_ms / 1000)
        request_id = str(uuid.uuid4())
        return web.json_response(
            {
                "metadata": {
                    "request_id": request_id,
                    "duration": duration,
                    "channels": channels,
                    "models": [MODEL_UUID],
                    "created": datetime.now(UTC).isoformat(),
                },
                "results": {"channels": [{"alternatives": [_alternative(transcript, 0.0, duration)]}]},
            },
            headers={"dg-request-id": request_id},
        )
