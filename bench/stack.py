"""The real stack a call benchmark runs against, started and stopped in one place.

LiveKit server, the provider emulators at a good cloud stack's latencies, one agent worker and
the token server, whose ID tokens are RS256-signed by a local stand-in for Google's key service
(certificates cacheable for an hour, as Google's are). Every benchmark that places calls uses
the same latencies and the same worker defaults, so their figures compare.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from livekit import api

from tests.support.agent_worker import start_worker
from tests.support.firebase_emulator import SigningAuthority, firebase_claims
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.processes import Service
from tests.support.provider_emulators import ProviderEmulators, start_provider_emulators
from tests.support.rtc_caller import Caller
from tests.support.token_server import TokenServer, start_token_server, token_server_env

# STT final 350 ms after the end of speech, LLM first token 375 ms, TTS first byte 100 ms.
LATENCIES = {"stt": {"first_ms": 350}, "llm": {"first_ms": 375}, "tts": {"first_ms": 100}}
INJECTED_LLM_MS, INJECTED_TTS_MS = 375.0, 100.0
AGENT = "voicedesk"


@dataclass(frozen=True)
class CallStack:
    livekit: LiveKitServer
    emulators: ProviderEmulators
    worker: Service
    token_server: TokenServer
    authority: SigningAuthority

    def id_token(self, uid: str, **claims: object) -> str:
        """A Firebase ID token for ``uid`` that the token server accepts."""
        return self.authority.sign(firebase_claims(uid, **claims))

    async def call(self, uid: str) -> tuple[Caller, str]:
        """Press Call AI as ``uid``: the token from ``POST /token``, a caller in its room."""
        async with httpx.AsyncClient(base_url=self.token_server.url, timeout=10) as http:
            resp = await http.post("/token", headers={"Authorization": f"Bearer {self.id_token(uid)}"})
            resp.raise_for_status()
        body = resp.json()
        verifier = api.TokenVerifier(self.livekit.api_key, self.livekit.api_secret)
        room = verifier.verify(body["participant_token"]).video.room
        caller = Caller()
        await caller.connect(body["server_url"], body["participant_token"])
        return caller, room


@contextlib.contextmanager
def call_stack(
    work: Path,
    database_url: str,
    *,
    worker_env: dict[str, str] | None = None,
    token_env: dict[str, str] | None = None,
    redis_address: str | None = None,
    log_level: str = "info",
) -> Iterator[CallStack]:
    """Start everything under ``work``; stop it all afterwards, whatever happens."""
    authority = SigningAuthority(max_age=3600)
    livekit = start_livekit(work / "livekit", redis_address=redis_address)
    emulators = start_provider_emulators(work / "emulators")
    worker = token_server = None
    try:
        for provider, values in LATENCIES.items():
            emulators.set_latency(provider, **values)
        worker = start_worker(
            work / "worker",
            {
                **livekit.env(),
                **emulators.env(),
                "DATABASE_URL": database_url,
                "APP_ENV": "test",
                "AGENT_NAME": AGENT,
                "GREETING_CACHE_DIR": str(work / "greetings"),
                "CALL_JOURNAL_DIR": str(work / "journal"),
                **(worker_env or {}),
            },
            name="bench-worker",
            timeout=180,
            log_level=log_level,
        )
        token_server = start_token_server(
            work / "token-server",
            {
                **token_server_env(database_url),
                **livekit.env(),
                "FIREBASE_ID_TOKEN_CERTS_URL": authority.certs_url,
                **(token_env or {}),
            },
        )
        yield CallStack(livekit, emulators, worker, token_server, authority)
    finally:
        for service in (token_server.service if token_server else None, worker):
            if service is not None:
                service.stop()
        emulators.stop()
        livekit.service.stop()
        authority.close()
