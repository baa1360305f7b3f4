"""`voicedesk sip setup|status` against the real LiveKit server (with Redis, as SIP needs).

Every test uses object names and numbers of its own and deletes what it made, because the LiveKit
server is shared with the end-to-end tests, which dial in through their own trunk.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from livekit import api

from telephony import provisioning
from telephony.settings import TelephonySettings
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.processes import free_port

TWILIO_RANGES = "54.172.60.0/30,54.244.51.0/30"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def _number() -> str:
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))


@dataclass
class Scenario:
    """One test's settings: names and numbers of its own, and secrets to look for in the output."""

    livekit: LiveKitServer
    cwd: Path
    env: dict[str, str]

    async def voicedesk(self, *args: str, **overrides: str) -> Result:
        """``python -m voicedesk ARGS`` with only this scenario's variables (no stray .env)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIP_", "LIVEKIT_", "AGENT_NAME"))}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voicedesk",
            *args,
            cwd=self.cwd,
            env={**clean, **self.env, **overrides},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        result = Result(proc.returncode or 0, out.decode(), err.decode())
        secret_values = [
            v for k, v in {**self.env, **overrides}.items() if k.endswith(("PASSWORD", "SECRET"))
        ]
        for secret in filter(None, secret_values):
            assert secret not in result.stdout + result.stderr, "a secret was printed"
        return result

    def settings(self, *, without: tuple[str, ...] = ()) -> TelephonySettings:
        fields = {k.lower(): v for k, v in self.env.items() if k not in without}
        return TelephonySettings(_env_file=None, **fields)  # type: ignore[call-arg]


@pytest.fixture
async def scenario(livekit_server: LiveKitServer, tmp_path: Path) -> AsyncIterator[Scenario]:
    tag = secrets.token_hex(4)
    inbound = [_number(), _number()]
    env = {
        **livekit_server.env(),
        "AGENT_NAME": f"voicedesk-{tag}",
        "SIP_INBOUND_NUMBERS": ",".join(inbound),
        "SIP_INBOUND_ALLOWED_ADDRESSES": TWILIO_RANGES,
        "SIP_INBOUND_USERNAME": f"twilio-{tag}",
        "SIP_INBOUND_PASSWORD": f"inbound-pw-{secrets.token_hex(8)}",
        "SIP_OUTBOUND_ADDRESS": f"voicedesk-{tag}.pstn.twilio.com",
        "SIP_OUTBOUND_TRANSPORT": "tcp",
        "SIP_OUTBOUND_USERNAME": f"livekit-{tag}",
        "SIP_OUTBOUND_PASSWORD": f"outbound-pw-{secrets.token_hex(8)}",
        "SIP_INBOUND_TRUNK_NAME": f"test-{tag}-inbound",
        "SIP_OUTBOUND_TRUNK_NAME": f"test-{tag}-outbound",
        "SIP_DISPATCH_RULE_NAME": f"test-{tag}-rule",
    }
    yield Scenario(livekit_server, tmp_path, env)
    async with _api(livekit_server) as lk:
        objects = await _objects(lk, env)
        if objects.rule is not None:
            await lk.sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=objects.rule.sip_dispatch_rule_id)
            )
        for trunk in (objects.inbound, objects.outbound):
            if trunk is not None:
                await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))


def _api(livekit: LiveKitServer) -> api.LiveKitAPI:
    return api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret)


@dataclass
class Objects:
    inbound: api.SIPInboundTrunkInfo | None
    outbound: api.SIPOutboundTrunkInfo | None
    rule: api.SIPDispatchRuleInfo | None

    def ids(self) -> tuple[str | None, ...]:
        trunks = (t.sip_trunk_id if t else None for t in (self.inbound, self.outbound))
        return (*trunks, self.rule.sip_dispatch_rule_id if self.rule else None)


async def _objects(lk: api.LiveKitAPI, env: dict[str, str]) -> Objects:
    """What LiveKit holds under this scenario's names (exactly one of each, or none)."""
    inbound = [
        t
        for t in (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
        if t.name == env["SIP_INBOUND_TRUNK_NAME"]
    ]
    outbound = [
        t
        for t in (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
        if t.name == env["SIP_OUTBOUND_TRUNK_NAME"]
    ]
    rules = [
        r
        for r in (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
        if r.name == env["SIP_DISPATCH_RULE_NAME"]
    ]
    assert max(len(inbound), len(outbound), len(rules)) <= 1, "setup made a duplicate"
    return Objects(
        inbound[0] if inbound else None, outbound[0] if outbound else None, rules[0] if rules else None
    )


async def test_setup_creates_the_trunks_and_the_rule(scenario: Scenario) -> None:
    env = scenario.env
    result = await scenario.voicedesk("sip", "setup")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(": created - " in line for line in lines), result.stdout

    async with _api(scenario.livekit) as lk:
        made = await _objects(lk, env)
    assert made.inbound is not None and made.outbound is not None and made.rule is not None

    assert list(made.inbound.numbers) == env["SIP_INBOUND_NUMBERS"].split(",")
    assert list(made.inbound.allowed_addresses) == TWILIO_RANGES.split(",")
    assert made.inbound.auth_username == env["SIP_INBOUND_USERNAME"]
    assert made.inbound.auth_password == env["SIP_INBOUND_PASSWORD"]

    assert list(made.rule.trunk_ids) == [made.inbound.sip_trunk_id]
    assert made.rule.rule.WhichOneof("rule") == "dispatch_rule_individual"
    assert made.rule.rule.dispatch_rule_individual.room_prefix == "call-"
    [agent] = made.rule.room_config.agents
    assert agent.agent_name == env["AGENT_NAME"]
    assert json.loads(agent.metadata) == {"channel": "pstn_inbound"}

    assert made.outbound.address == env["SIP_OUTBOUND_ADDRESS"]
    assert made.outbound.transport == api.SIPTransport.SIP_TRANSPORT_TCP
    # No SIP_OUTBOUND_NUMBER: the caller ID is the first inbound number.
    assert list(made.outbound.numbers) == [env["SIP_INBOUND_NUMBERS"].split(",")[0]]
    assert made.outbound.auth_username == env["SIP_OUTBOUND_USERNAME"]
    assert made.outbound.auth_password == env["SIP_OUTBOUND_PASSWORD"]

    assert made.inbound.sip_trunk_id in result.stdout and "auth yes" in result.stdout


async def test_setup_again_changes_nothing(scenario: Scenario) -> None:
    assert (await scenario.voicedesk("sip", "setup")).returncode == 0
    async with _api(scenario.livekit) as lk:
        before = await _objects(lk, scenario.env)

    again = await scenario.voicedesk("sip", "setup")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert len(lines) == 3 and all(": unchanged - " in line for line in lines), again.stdout
    async with _api(scenario.livekit) as lk:
        after = await _objects(lk, scenario.env)
    assert after == before  # same ids, same contents


async def test_a_changed_setting_updates_the_same_object(scenario: Scenario) -> None:
    assert (await scenario.voicedesk("sip", "setup")).returncode == 0
    async with _api(scenario.livekit) as lk:
        before = await _objects(lk, scenario.env)

    kept, new = scenario.env["SIP_INBOUND_NUMBERS"].split(",")[0], _number()
    new_password = f"rotated-pw-{secrets.token_hex(8)}"
    changed = await scenario.voicedesk(
        "sip",
        "setup",
        SIP_INBOUND_NUMBERS=f"{kept},{new}",
        SIP_INBOUND_PASSWORD=new_password,
        SIP_OUTBOUND_NUMBER=new,
    )
    assert changed.returncode == 0, changed.stderr
    assert new_password not in changed.stdout + changed.stderr
    inbound_line, rule_line, outbound_line = changed.stdout.splitlines()
    assert ": updated numbers, auth credentials - " in inbound_line
    assert ": unchanged - " in rule_line
    assert ": updated caller id - " in outbound_line

    async with _api(scenario.livekit) as lk:
        after = await _objects(lk, scenario.env)
    assert after.ids() == before.ids()
    assert after.inbound is not None and after.outbound is not None
    assert list(after.inbound.numbers) == [kept, new]
    assert after.inbound.auth_password == new_password
    assert list(after.outbound.numbers) == [new]


async def test_status_shows_what_exists(scenario: Scenario) -> None:
    assert (await scenario.voicedesk("sip", "setup")).returncode == 0
    async with _api(scenario.livekit) as lk:
        made = await _objects(lk, scenario.env)
    assert made.inbound is not None and made.outbound is not None and made.rule is not None

    # status needs only the LiveKit variables.
    result = await scenario.voicedesk("sip", "status", SIP_INBOUND_NUMBERS="", SIP_INBOUND_USERNAME="")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    inbound = next(line for line in lines if made.inbound.sip_trunk_id in line and "numbers" in line)
    assert scenario.env["SIP_INBOUND_TRUNK_NAME"] in inbound
    assert all(n in inbound for n in scenario.env["SIP_INBOUND_NUMBERS"].split(","))
    assert "54.172.60.0/30" in inbound and "auth yes" in inbound
    outbound = next(line for line in lines if made.outbound.sip_trunk_id in line)
    assert scenario.env["SIP_OUTBOUND_ADDRESS"] in outbound and "(tcp)" in outbound and "auth yes" in outbound
    rule = next(line for line in lines if made.rule.sip_dispatch_rule_id in line)
    assert f"{scenario.env['SIP_INBOUND_TRUNK_NAME']} ({made.inbound.sip_trunk_id})" in rule
    assert "prefix call-" in rule and scenario.env["AGENT_NAME"] in rule and "pstn_inbound" in rule
    assert out.index("inbound trunks:") < out.index("outbound trunks:") < out.index("dispatch rules:")


async def test_the_functions_and_no_outbound_trunk_without_an_address(scenario: Scenario) -> None:
    settings = scenario.settings(without=("SIP_OUTBOUND_ADDRESS",))
    async with _api(scenario.livekit) as lk:
        lines = await provisioning.setup(lk, settings)
        assert "skipped - SIP_OUTBOUND_ADDRESS is not set" in lines[-1]
        assert await provisioning.find_outbound_trunk_id(lk, settings.sip_outbound_trunk_name) is None

        lines = await provisioning.setup(lk, scenario.settings())
        assert ": created - " in lines[-1] and ": unchanged - " in lines[0]
        made = await _objects(lk, scenario.env)
        assert made.outbound is not None
        found = await provisioning.find_outbound_trunk_id(lk, settings.sip_outbound_trunk_name)
        assert found == made.outbound.sip_trunk_id
        assert any(made.outbound.sip_trunk_id in line for line in await provisioning.status(lk))


async def test_a_bad_number_stops_setup_and_names_the_variable(scenario: Scenario) -> None:
    result = await scenario.voicedesk("sip", "setup", SIP_INBOUND_NUMBERS="+15550100,555-0101")
    assert result.returncode == 2
    assert "SIP_INBOUND_NUMBERS is invalid" in result.stderr and "'555-0101'" in result.stderr
    assert "example: SIP_INBOUND_NUMBERS=" in result.stderr
    async with _api(scenario.livekit) as lk:
        assert (await _objects(lk, scenario.env)).ids() == (None, None, None)  # LiveKit never called


async def test_an_unreachable_livekit_is_named(scenario: Scenario) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}"
    result = await scenario.voicedesk("sip", "status", LIVEKIT_URL=nowhere)
    assert result.returncode == 1
    assert f"LIVEKIT_URL={nowhere}" in result.stderr and "Traceback" not in result.stderr


async def test_a_livekit_server_without_redis_is_explained(scenario: Scenario, tmp_path: Path) -> None:
    bare = start_livekit(tmp_path / "livekit-without-redis")
    try:
        result = await scenario.voicedesk("sip", "setup", **bare.env())
    finally:
        bare.service.stop()
    assert result.returncode == 1
    assert f"LIVEKIT_URL={bare.url}" in result.stderr and "redis" in result.stderr.lower()


async def test_a_wrong_api_secret_is_named(scenario: Scenario) -> None:
    result = await scenario.voicedesk("sip", "setup", LIVEKIT_API_SECRET="not-the-secret-0123456789abcdef")
    assert result.returncode == 1
    assert "LIVEKIT_URL=" in result.stderr and "LIVEKIT_API_SECRET" in result.stderr
    assert "not-the-secret" not in result.stderr and "Traceback" not in result.stderr
