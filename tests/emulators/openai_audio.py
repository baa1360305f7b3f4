"""OpenAI audio emulator: ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech``, what
``openai.STT`` (non-realtime) and ``openai.TTS`` send. They are the fallback STT and TTS, so
they have their own fault keys: ``openai_stt`` and ``openai_tts``.

Transcriptions: a multipart form with ``file`` (a WAV of one utterance the agent's VAD cut),
``model``, ``language``, ``response_format`` (``json``, ``verbose_json`` or ``text``). The
transcript is the next scripted one when the audio holds speech (only its trailing words when
the audio holds less than the line's scripted length), else empty.

Speech: JSON with ``input``, ``model``, ``voice``, ``response_format`` (``pcm`` = raw 24 kHz
16-bit mono, ``wav``, ``mp3``), ``speed``, ``stream_format``. ``sse`` (what the plugin asks of
the gpt-4o TTS models) answers ``speech.audio.delta`` events with base64 audio, then
``speech.audio.done`` with usage; ``audio`` (tts-1) streams the bytes themselves.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
import wave
from typing import Any

from aiohttp import web

from . import faults, speech
from .endpointing import rms, voiced_span
from .openai_api import _check_auth, _openai_error
from .state import EmulatorState

SPEECH_RATE = 24000  # OpenAI TTS output rate, for every response_format
_MIME = {"pcm": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg"}


def _wav(pcm: bytes, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


class OpenAIAudioEmulator:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/audio/transcriptions", self.transcriptions),
            web.post("/v1/audio/speech", self.speech),
        ]

    # speech to text ------------------------------------------------------------------------
    async def transcriptions(self, request: web.Request) -> web.StreamResponse:
        if (denied := _check_auth(request)) is not None:
            return denied
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _openai_error(400, "Missing required parameter: 'file'.", "invalid_request_error")
        data = upload.file.read()
        try:
            with wave.open(io.BytesIO(data)) as wav:
                pcm, channels = wav.readframes(wav.getnframes()), wav.getnchannels()
                wav_rate = wav.getframerate()
                duration = wav.getnframes() / wav_rate
        except (wave.Error, EOFError):
            return _openai_error(400, "Invalid file format.", "invalid_request_error")
        fault = self.state.take_fault("openai_stt")
        heard = rms(pcm, channels) >= self.state.latency["openai_stt"].threshold
        # A faulted request leaves its scripted transcript for whoever transcribes next.
        transcript = ""
        if heard:
            transcript = self.state.next_transcript()[0] if fault is None else self._peek()
            voiced = voiced_span(pcm, wav_rate, channels, self.state.latency["openai_stt"].threshold)
            transcript = self.state.heard_part(transcript, voiced)
        fmt = str(form.get("response_format") or "json")
        self.state.record(
            "openai_stt",
            "transcription",
            text=transcript,
            duration=round(duration, 3),
            model=form.get("model"),
            language=form.get("language"),
            response_format=fmt,
            fault=fault,
        )
        if fault == "http_500":
            return _openai_error(500, "The server had an error while processing your request.")
        if fault == "disconnect":
            faults.drop(request)
            return web.Response(status=500)
        if fault == "stall":
            await faults.stall(request)
            return web.Response(status=504)
        if first_ms := self.state.latency["openai_stt"].first_ms:
            await asyncio.sleep(first_ms / 1000)
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        if fmt == "text":
            return web.Response(text=transcript, headers=headers)
        body: dict[str, Any] = {"text": transcript}
        if fmt == "verbose_json":
            body |= {"task": "transcribe", "language": "english", "duration": duration, "segments": []}
        else:
            tokens = len(transcript.split())
            audio_tokens = max(1, round(duration * 10))
            body["usage"] = {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": tokens,
                "total_tokens": audio_tokens + tokens,
            }
        return web.json_response(body, headers=headers)

    def _peek(self) -> str:
        return self.state.stt_script[0] if self.state.stt_script else self.state.stt_default

    # text to speech ------------------------------------------------------------------------
    async def speech(self, request: web.Request) -> web.StreamResponse:
        if (denied := _check_auth(request)) is not None:
            return denied
        body = await request.json()
        text = str(body.get("input") or "")
        fmt = str(body.get("response_format") or "mp3")
        if not text.strip():
            return _openai_error(400, "Missing required parameter: 'input'.", "invalid_request_error")
        if fmt not in _MIME:
            return _openai_error(
                400, f"Unsupported response_format {fmt!r} (emulated: pcm, wav, mp3)", "invalid_request_error"
            )
        sse = body.get("stream_format") == "sse"
        requested = time.monotonic()
        fault = self.state.take_fault("openai_tts")
        entry = self.state.record(
            "openai_tts",
            "synthesize",
            text=text.strip(),
            model=body.get("model"),
            voice=body.get("voice"),
            response_format=fmt,
            stream_format="sse" if sse else "audio",
            fault=fault,
        )
        if fault == "http_500":
            return _openai_error(500, "The server had an error while processing your request.")
        pcm = await speech.synthesize_pcm(text, SPEECH_RATE)
        duration = len(pcm) / 2 / SPEECH_RATE
        entry["duration"] = round(duration, 3)
        if fmt == "mp3":
            audio = await asyncio.to_thread(speech.encode_mp3, pcm, SPEECH_RATE, 64)
        else:
            audio = _wav(pcm, SPEECH_RATE) if fmt == "wav" else pcm
        latency = self.state.latency["openai_tts"]
        first_at = requested + latency.first_ms / 1000
        if (wait := first_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream" if sse else _MIME[fmt],
                "x-request-id": f"req_{uuid.uuid4().hex}",
            }
        )
        await resp.prepare(request)
        if fault == "stall":
            await faults.stall(request)
            return resp
        rate = latency.rate
        prev_end = 0.0
        try:
            for i, (piece, end) in enumerate(speech.chunk_bytes(audio, duration)):
                wait = first_at + (prev_end / rate if rate > 0 else 0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if i == 0:
                    entry["first_byte_at"] = time.time()
                if sse:
                    delta = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()}
                    await resp.write(f"data: {json.dumps(delta)}\n\n".encode())
                else:
                    await resp.write(piece)
                if fault == "disconnect":  # part of the audio, then the connection is gone
                    self.state.record("openai_tts", "disconnect")
                    faults.drop(request)
                    return resp
                prev_end = end
            if sse:
                words = len(text.split())
                usage = {"input_tokens": words, "output_tokens": round(duration * 20)}
                done = {"type": "speech.audio.done", "usage": {**usage, "total_tokens": sum(usage.values())}}
                await resp.write(f"data: {json.dumps(done)}\n\n".encode())
            await resp.write_eof()
        except ConnectionResetError:  # the client stopped listening (interruption)
            pass
        return resp
