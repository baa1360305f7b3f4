"""A real Redis (Debian's redis-server) on loopback with a free port, for tests.

LiveKit keeps SIP trunks and dispatch rules in Redis and refuses the SIP APIs without it, and
livekit-sip finds its jobs there, so every test LiveKit server is started with one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import Service, free_port, start_service
from voicedesk.dev_stack import redis_answers

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    service: Service
    port: int

    @property
    def address(self) -> str:
        """``host:port``, as livekit-server's and livekit-sip's ``redis.address`` want it."""
        return f"127.0.0.1:{self.port}"


def start_redis(work_dir: Path) -> RedisServer:
    binary = REDIS_SERVER if Path(REDIS_SERVER).exists() else shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: install Debian's package (apt-get install redis-server)")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(work_dir)]
    svc = start_service("redis-server", argv, work_dir, ready=lambda: redis_answers(port))
    return RedisServer(svc, port)
