"""A real LiveKit server (the pinned Go build) on loopback with free ports, for tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import Service, free_port, http_ok, start_service

API_KEY = "testkey"
API_SECRET = "voicedesk-test-secret-0123456789abcdef"


@dataclass
class LiveKitServer:
    service: Service
    port: int
    api_key: str = API_KEY
    api_secret: str = API_SECRET

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "LIVEKIT_URL": self.url,
            "LIVEKIT_API_KEY": self.api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
        }


def start_livekit(work_dir: Path, *, redis_address: str | None = None) -> LiveKitServer:
    """Start livekit-server; with ``redis_address`` (``host:port``) it serves the SIP APIs too."""
    binary = shutil.which("livekit-server")
    if binary is None:
        raise RuntimeError("livekit-server is not on PATH: run the tests with `make test`, which builds it")
    work_dir.mkdir(parents=True, exist_ok=True)
    port, tcp_port, udp_port = free_port(), free_port(), free_port()
    # SIP trunks and dispatch rules live in Redis: without it the SIP APIs fail ("redis required").
    redis = f"redis:\n  address: {redis_address}\n" if redis_address else ""
    config = work_dir / "livekit.yaml"
    config.write_text(
        f"""port: {port}
bind_addresses: [127.0.0.1]
rtc:
  tcp_port: {tcp_port}
  udp_port: {udp_port}
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
keys:
  {API_KEY}: {API_SECRET}
logging:
  level: info
"""
        + redis
    )
    svc = start_service(
        "livekit-server",
        [binary, "--config", str(config)],
        work_dir,
        ready=http_ok(f"http://127.0.0.1:{port}/"),
    )
    return LiveKitServer(svc, port)
