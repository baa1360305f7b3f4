"""Start the provider emulators (``python -m tests.emulators``) and drive their control API.

Other tests use this to point the agent worker at local stand-ins for OpenAI, Deepgram and
ElevenLabs: ``env()`` is exactly what the worker's settings read, and ``script()``,
``set_latency()``, ``fault()``, ``log()`` and ``reset()`` steer the emulator at run time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .processes import Service, free_port, http_ok, start_service


@dataclass
class ProviderEmulators:
    port: int
    service: Service | None = None
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_urls(self) -> dict[str, str]:
        """``base_url`` for each plugin: ``openai.LLM``, ``deepgram.STT``, ``elevenlabs.TTS``.

        Deepgram's plugin appends the query string to the full listen URL and swaps
        http->ws itself, so it takes ``http://.../v1/listen``; ElevenLabs swaps to ws:// too.
        """
        return {
            "openai": f"{self.url}/v1",
            "deepgram": f"{self.url}/v1/listen",
            "elevenlabs": f"{self.url}/v1",
        }

    def env(self) -> dict[str, str]:
        urls = self.base_urls
        return {
            "OPENAI_BASE_URL": urls["openai"],
            "OPENAI_API_KEY": "emulator",
            "DEEPGRAM_BASE_URL": urls["deepgram"],
            "DEEPGRAM_API_KEY": "emulator",
            "ELEVENLABS_BASE_URL": urls["elevenlabs"],
            "ELEVENLABS_API_KEY": "emulator",
            "ELEVEN_API_KEY": "emulator",
            # Fallbacks: OpenAI STT and TTS (OPENAI_BASE_URL), a second OpenAI-compatible LLM.
            "STT_PROVIDERS": "deepgram,openai",
            "TTS_PROVIDERS": "elevenlabs,openai",
            "LLM_FALLBACK_BASE_URL": f"{self.url}/fallback/v1",
            "LLM_FALLBACK_API_KEY": "emulator-fallback",
            "LLM_FALLBACK_MODEL": "gpt-4.1-mini",
        }

    # control API -------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(f"{self.url}/_emulator/{path}", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self._post("reset", {})

    def script(
        self,
        *,
        stt: list[str] | None = None,
        llm: list[dict[str, Any] | str] | None = None,
        stt_default: str | None = None,
        stt_lengths: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Queue what callers say (``stt``) and what the LLM answers (``llm``), in order.

        LLM items: ``{"text": ...}``, ``{"tool_calls": [{"name": ..., "arguments": {...}}]}``,
        optionally with ``"when": "substring of the last user message"``. ``stt_lengths``: voiced
        seconds each STT line takes to say; a provider hearing less transcribes only its end.
        """
        body: dict[str, Any] = {"stt": stt or [], "llm": llm or []}
        if stt_default is not None:
            body["stt_default"] = stt_default
        if stt_lengths:
            body["stt_lengths"] = stt_lengths
        return self._post("script", body)

    def set_latency(self, provider: str, **values: float) -> dict[str, Any]:
        """E.g. ``set_latency("llm", first_ms=375, rate=40)``; STT also takes ``silence_ms``."""
        return self._post("latency", {"provider": provider, **values})

    def fault(self, provider: str, kind: str, count: int = 1, after: int = 1) -> dict[str, Any]:
        """``kind``: ``http_500``, ``stall`` or ``disconnect``; ``count=-1`` means always.
        ``after``: TTS audio chunks (0.1 s each) a ``disconnect`` lets through before the cut."""
        return self._post("fault", {"provider": provider, "kind": kind, "count": count, "after": after})

    def clear_fault(self, provider: str) -> dict[str, Any]:
        return self._post("fault", {"provider": provider, "kind": "none"})

    def log(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else None
        resp = httpx.get(f"{self.url}/_emulator/log", params=params, timeout=10)
        resp.raise_for_status()
        return resp.json()["entries"]

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


def start_provider_emulators(log_dir: Path, *, port: int | None = None) -> ProviderEmulators:
    """Start the emulator as a real subprocess and wait until its health check answers."""
    port = port or free_port()
    argv = [sys.executable, "-m", "tests.emulators", "--host", "127.0.0.1", "--port", str(port)]
    ready = http_ok(f"http://127.0.0.1:{port}/_emulator/health")
    service = start_service("provider-emulators", argv, log_dir, ready=ready, timeout=30)
    return ProviderEmulators(port=port, service=service)
