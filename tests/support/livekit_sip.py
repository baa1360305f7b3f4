"""A real livekit-sip (the pinned Go build) on loopback, sharing Redis with the test LiveKit server."""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from livekit import api

from telephony.provisioning import setup
from telephony.settings import TelephonySettings
from tests.support.livekit_server import LiveKitServer
from tests.support.processes import Service, free_port, start_service

RTP_PORTS = 64  # two per call


@dataclass
class LiveKitSip:
    service: Service
    port: int

    def uri(self, number: str) -> str:
        """What a softphone dials to call ``number`` on our inbound trunk."""
        return f"sip:{number}@127.0.0.1:{self.port}"


def _free_udp_range(size: int) -> int:
    """The first port of ``size`` consecutive UDP ports nobody uses right now."""
    for _ in range(50):
        start = free_port()
        if start + size > 65535:
            continue
        probes = []
        try:
            for port in range(start, start + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probes.append(sock)
                sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for sock in probes:
                sock.close()
    raise RuntimeError("no free UDP port range for livekit-sip's RTP")


def start_livekit_sip(work_dir: Path, livekit: LiveKitServer, redis_address: str) -> LiveKitSip:
    binary = shutil.which("livekit-sip")
    if binary is None:
        raise RuntimeError("livekit-sip is not on PATH: run the tests with `make test`, which builds it")
    work_dir.mkdir(parents=True, exist_ok=True)
    sip_port, rtp = free_port(), _free_udp_range(RTP_PORTS)
    config = work_dir / "sip.yaml"
    config.write_text(
        f"""api_key: {livekit.api_key}
api_secret: {livekit.api_secret}
ws_url: {livekit.url}
redis:
  address: {redis_address}
sip_port: {sip_port}
sip_port_listen: {sip_port}
rtp_port: {rtp}-{rtp + RTP_PORTS - 1}
listen_ip: 127.0.0.1
nat_1_to_1_ip: 127.0.0.1
use_external_ip: false
# Its default refuses calls above 90 % CPU ("cpu exhausted"), which a busy shared 2-core test
# machine reaches; how many calls run is the agent worker's job (WORKER_MAX_CALLS).
max_cpu_utilization: 1.0
logging:
  level: debug
"""
    )
    svc = start_service(
        "livekit-sip",
        [binary, "--config", str(config)],
        work_dir,
        ready=lambda: "service ready" in (work_dir / "livekit-sip.log").read_text(errors="replace"),
        timeout=30,
    )
    return LiveKitSip(svc, sip_port)


async def provision_trunks(
    livekit: LiveKitServer, company_number: str, *, outbound_address: str | None = None
) -> list[str]:
    """Run the same provisioning as `voicedesk sip setup`; loopback stands in for Twilio."""
    settings = TelephonySettings(
        livekit_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        sip_inbound_numbers=[company_number],
        sip_inbound_allowed_addresses=["127.0.0.1/32"],
        sip_outbound_address=outbound_address,
        sip_outbound_number=company_number,
    )
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        return await setup(lk, settings)
