"""End-to-end fixtures: the built web app; a real livekit-sip with the trunks `voicedesk sip setup` makes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.support.agent_worker import start_worker
from tests.support.livekit_server import LiveKitServer
from tests.support.livekit_sip import LiveKitSip, provision_trunks, start_livekit_sip
from tests.support.processes import REPO_ROOT, Service
from tests.support.redis_server import RedisServer
from tests.support.softphone import Softphone, start_softphone

COMPANY_NUMBER = "+15550100"
CUSTOMER_NUMBER = "+15557654321"


@pytest.fixture(scope="session")
def web_dist() -> Path:
    dist = REPO_ROOT / "web" / "dist" / "index.html"
    assert dist.exists(), "web/dist is not built: run the tests with `make test`, which builds it"
    return dist


# AGENT_MODE=realtime workers, each under its own agent name: speech to speech with the model's
# voice (no ElevenLabs key), and the model's text spoken by ElevenLabs.
REALTIME_WORKERS = {
    "realtime": ("voicedesk-realtime", {"ELEVENLABS_API_KEY": "", "ELEVEN_API_KEY": ""}),
    "realtime_voice": ("voicedesk-realtime-voice", {}),
}


@pytest.fixture(scope="session")
def realtime_workers(work_dir: Path, worker_env: dict[str, str]) -> Iterator[dict[str, Service]]:
    """Started on first use, stopped at the end of the session."""
    started: dict[str, Service] = {}
    yield started
    for worker in started.values():
        worker.stop()


@pytest.fixture(params=["pipeline", *REALTIME_WORKERS])
def agent_mode(request: pytest.FixtureRequest) -> str:
    """Runs a test once per AGENT_MODE: the pipeline (the session's worker) and realtime."""
    return request.param


@pytest.fixture
def call_agent(
    agent_mode: str,
    request: pytest.FixtureRequest,
    work_dir: Path,
    worker_env: dict[str, str],
    realtime_workers: dict[str, Service],
) -> str:
    """The agent name a call asks for, with a worker of that mode running."""
    if agent_mode == "pipeline":
        request.getfixturevalue("agent_worker")
        return "voicedesk"
    name, env = REALTIME_WORKERS[agent_mode]
    if agent_mode not in realtime_workers:
        realtime_workers[agent_mode] = start_worker(
            work_dir / name, {**worker_env, "AGENT_MODE": "realtime", "AGENT_NAME": name, **env}, name=name
        )
    return name


@pytest.fixture(scope="session")
def livekit_sip(
    work_dir: Path, livekit_server: LiveKitServer, redis_server: RedisServer
) -> Iterator[LiveKitSip]:
    sip = start_livekit_sip(work_dir / "livekit-sip", livekit_server, redis_server.address)
    yield sip
    sip.service.stop()


async def provision(livekit_server: LiveKitServer, *, outbound_address: str | None = None) -> list[str]:
    return await provision_trunks(livekit_server, COMPANY_NUMBER, outbound_address=outbound_address)


@pytest.fixture(scope="session")
def sip_trunks(livekit_sip: LiveKitSip, livekit_server: LiveKitServer) -> LiveKitSip:
    asyncio.run(provision(livekit_server))
    return livekit_sip


@asynccontextmanager
async def customer_line(
    work_dir: Path, livekit_server: LiveKitServer, *, user: str = CUSTOMER_NUMBER, **phone: object
) -> AsyncIterator[Softphone]:
    """A customer's phone at the far end of the outbound trunk (options: ``start_softphone``'s)."""
    customer = start_softphone(work_dir, "customer", user=user, **phone)  # type: ignore[arg-type]
    try:
        await provision(livekit_server, outbound_address=f"127.0.0.1:{customer.port}")
        yield customer
    finally:
        customer.stop()
