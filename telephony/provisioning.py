"""Create, update and show the LiveKit SIP objects that connect phone calls to the agent.

Three objects, each found by name so that ``voicedesk sip setup`` can run on every deploy:
the inbound trunk (which numbers, from where, with which credentials), the dispatch rule (a room
of its own per caller, the agent dispatched into it) and the outbound trunk the agent dials out
through. A changed setting updates the object in place (LiveKit's Update* APIs, replacing the
whole object), so ids stay put: the rule points at the trunk by id, and a delete-and-create
would leave a moment in which calls find no trunk or no rule. The fields named here are ours;
anything else set on an object elsewhere (Krisp, headers, ...) is copied into the replacement.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import aiohttp
from livekit import api

from telephony.settings import LiveKitApiSettings, TelephonySettings

# The job metadata the agent sees for a caller who dialled in; the agent reads "channel".
INBOUND_DISPATCH_METADATA = json.dumps({"channel": "pstn_inbound"})
ROOM_PREFIX = "call-"

_TRANSPORTS = {
    "auto": api.SIPTransport.SIP_TRANSPORT_AUTO,
    "udp": api.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": api.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": api.SIPTransport.SIP_TRANSPORT_TLS,
}
_TRANSPORT_NAMES = {value: name for name, value in _TRANSPORTS.items()}

M = TypeVar("M", api.SIPInboundTrunkInfo, api.SIPOutboundTrunkInfo, api.SIPDispatchRuleInfo)


def _join(values: Sequence[str], empty: str = "none") -> str:
    return ", ".join(values) or empty


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _describe_inbound(trunk: api.SIPInboundTrunkInfo) -> str:
    return (
        f"numbers {_join(trunk.numbers)}; allowed addresses {_join(trunk.allowed_addresses)}; "
        f"auth {_yes_no(bool(trunk.auth_username))}"
    )


def _describe_outbound(trunk: api.SIPOutboundTrunkInfo) -> str:
    transport = _TRANSPORT_NAMES.get(trunk.transport, str(trunk.transport))
    return (
        f"address {trunk.address or 'none'} ({transport}); caller id {_join(trunk.numbers)}; "
        f"auth {_yes_no(bool(trunk.auth_username))}"
    )


def _describe_rule(rule: api.SIPDispatchRuleInfo, trunk_names: dict[str, str] | None = None) -> str:
    names = trunk_names or {}
    trunks = _join([f"{names[t]} ({t})" if t in names else t for t in rule.trunk_ids], "any")
    kind = rule.rule.WhichOneof("rule")
    if kind == "dispatch_rule_individual":
        room = f"a room per caller, prefix {rule.rule.dispatch_rule_individual.room_prefix or '(none)'}"
    elif kind == "dispatch_rule_direct":
        room = f"every caller into room {rule.rule.dispatch_rule_direct.room_name}"
    elif kind == "dispatch_rule_callee":
        room = f"a room per called number, prefix {rule.rule.dispatch_rule_callee.room_prefix or '(none)'}"
    else:
        room = "no rule"
    agents = [
        f"{a.agent_name} (metadata {a.metadata})" if a.metadata else a.agent_name
        for a in rule.room_config.agents
    ]
    return f"trunks {trunks}; {room}; agents {_join(agents)}"


def _by_name(items: Sequence[M], name: str) -> tuple[M | None, int]:
    """The first object LiveKit lists under ``name``, and how many share the name."""
    matches = [item for item in items if item.name == name]
    return (matches[0] if matches else None), len(matches)


def _changes(existing: M, desired: M, fields: dict[str, Sequence[str]]) -> list[str]:
    """Labels of the managed fields that differ (a label may cover several fields, e.g. auth)."""
    return [
        label
        for label, names in fields.items()
        if any(getattr(existing, f) != getattr(desired, f) for f in names)
    ]


def _based_on(existing: M | None, desired: M) -> M:
    """``desired`` starting as a copy of ``existing``, so fields setup does not manage are kept."""
    if existing is not None:
        desired.CopyFrom(existing)
    return desired


async def _apply(
    existing: M | None,
    desired: M,
    managed: dict[str, Sequence[str]],
    id_field: str,
    create: Callable[[M], Awaitable[M]],
    update: Callable[[str, M], Awaitable[M]],
) -> tuple[M, str]:
    """Create ``desired``, update ``existing`` when a managed field differs, or leave it alone."""
    if existing is None:
        desired.ClearField(id_field)
        return await create(desired), "created"
    if changed := _changes(existing, desired, managed):
        return await update(getattr(existing, id_field), desired), f"updated {', '.join(changed)}"
    return existing, "unchanged"


def _duplicates(kind: str, name: str, count: int, kept: str) -> list[str]:
    """Two objects of one name are a mess made by hand; say which one setup manages."""
    if count <= 1:
        return []
    return [f"warning: {count} {kind}s are named {name}; managing {kept}, delete the others"]


async def _setup_inbound_trunk(lk: api.LiveKitAPI, settings: TelephonySettings) -> tuple[str, list[str]]:
    name = settings.sip_inbound_trunk_name
    password = settings.sip_inbound_password
    listed = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    existing, count = _by_name(listed, name)
    managed = {
        "numbers": ("numbers",),
        "allowed addresses": ("allowed_addresses",),
        # LiveKit hands the stored password back to an admin key, so a changed password is seen.
        "auth credentials": ("auth_username", "auth_password"),
    }
    desired = _based_on(existing, api.SIPInboundTrunkInfo())
    desired.name = name
    desired.numbers[:] = settings.sip_inbound_numbers
    desired.allowed_addresses[:] = settings.sip_inbound_allowed_addresses
    desired.auth_username = settings.sip_inbound_username or ""
    desired.auth_password = password.get_secret_value() if password else ""

    trunk, what = await _apply(
        existing,
        desired,
        managed,
        "sip_trunk_id",
        lambda trunk: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk)),
        lk.sip.update_inbound_trunk,
    )
    line = f"inbound trunk {name} ({trunk.sip_trunk_id}): {what} - {_describe_inbound(trunk)}"
    return trunk.sip_trunk_id, [*_duplicates("inbound trunk", name, count, trunk.sip_trunk_id), line]


async def _setup_dispatch_rule(lk: api.LiveKitAPI, settings: TelephonySettings, trunk_id: str) -> list[str]:
    name = settings.sip_dispatch_rule_name
    listed = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    existing, count = _by_name(listed, name)
    desired = _based_on(existing, api.SIPDispatchRuleInfo())
    desired.name = name
    desired.trunk_ids[:] = [trunk_id]
    desired.rule.CopyFrom(
        api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=ROOM_PREFIX))
    )
    # Dispatch through the room's configuration: LiveKit starts the agent job as the room is
    # created, so the caller hears the greeting without waiting for a separate dispatch call.
    del desired.room_config.agents[:]
    desired.room_config.agents.append(
        api.RoomAgentDispatch(agent_name=settings.agent_name, metadata=INBOUND_DISPATCH_METADATA)
    )
    managed = {"trunk": ("trunk_ids",), "room rule": ("rule",), "agent dispatch": ("room_config",)}

    rule, what = await _apply(
        existing,
        desired,
        managed,
        "sip_dispatch_rule_id",
        lambda rule: lk.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule)),
        lk.sip.update_dispatch_rule,
    )
    trunk_names = {trunk_id: settings.sip_inbound_trunk_name}
    line = f"dispatch rule {name} ({rule.sip_dispatch_rule_id}): {what} - {_describe_rule(rule, trunk_names)}"
    return [*_duplicates("dispatch rule", name, count, rule.sip_dispatch_rule_id), line]


async def _setup_outbound_trunk(lk: api.LiveKitAPI, settings: TelephonySettings) -> list[str]:
    name = settings.sip_outbound_trunk_name
    if settings.sip_outbound_address is None:
        return [f"outbound trunk {name}: skipped - SIP_OUTBOUND_ADDRESS is not set (no outbound calls)"]
    password = settings.sip_outbound_password
    listed = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    existing, count = _by_name(listed, name)
    desired = _based_on(existing, api.SIPOutboundTrunkInfo())
    desired.name = name
    desired.address = settings.sip_outbound_address
    desired.transport = _TRANSPORTS[settings.sip_outbound_transport]
    desired.numbers[:] = [settings.outbound_caller_id]
    desired.auth_username = settings.sip_outbound_username or ""
    desired.auth_password = password.get_secret_value() if password else ""
    managed = {
        "address": ("address",),
        "transport": ("transport",),
        "caller id": ("numbers",),
        "auth credentials": ("auth_username", "auth_password"),
    }

    trunk, what = await _apply(
        existing,
        desired,
        managed,
        "sip_trunk_id",
        lambda trunk: lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk)),
        lk.sip.update_outbound_trunk,
    )
    line = f"outbound trunk {name} ({trunk.sip_trunk_id}): {what} - {_describe_outbound(trunk)}"
    return [*_duplicates("outbound trunk", name, count, trunk.sip_trunk_id), line]


async def setup(lk: api.LiveKitAPI, settings: TelephonySettings) -> list[str]:
    """Make LiveKit's SIP objects match ``settings``; one line per object, never a secret.

    Idempotent: objects are found by name, changed only where a managed field differs, and a
    second run with the same settings reports every object unchanged.
    """
    trunk_id, lines = await _setup_inbound_trunk(lk, settings)
    lines += await _setup_dispatch_rule(lk, settings, trunk_id)
    lines += await _setup_outbound_trunk(lk, settings)
    return lines


async def status(lk: api.LiveKitAPI) -> list[str]:
    """Every SIP trunk and dispatch rule on the LiveKit server (not only ours), without secrets."""
    inbound = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    outbound = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    trunk_names = {t.sip_trunk_id: t.name for t in inbound}
    return [
        *_section("inbound trunks", [(t.name, t.sip_trunk_id, _describe_inbound(t)) for t in inbound]),
        *_section("outbound trunks", [(t.name, t.sip_trunk_id, _describe_outbound(t)) for t in outbound]),
        *_section(
            "dispatch rules",
            [(r.name, r.sip_dispatch_rule_id, _describe_rule(r, trunk_names)) for r in rules],
        ),
    ]


def _section(title: str, rows: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = [f"{name or '(no name)'} ({object_id}): {text}" for name, object_id, text in rows]
    return [f"{title}:", *(f"  {line}" for line in lines or ["none"])]


async def find_outbound_trunk_id(lk: api.LiveKitAPI, name: str) -> str | None:
    """The id of the outbound trunk called ``name`` (what CreateSIPParticipant needs), if any."""
    listed = (await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items
    trunk, _ = _by_name(listed, name)
    return trunk.sip_trunk_id if trunk is not None else None


Work = Callable[[api.LiveKitAPI], Awaitable[list[str]]]


def run(command: str, work: Work, settings: LiveKitApiSettings) -> int:
    """Run ``work`` against LIVEKIT_URL and print its lines; a LiveKit failure is named, exit 1."""

    async def call() -> list[str]:
        secret = settings.livekit_api_secret.get_secret_value()
        lk = api.LiveKitAPI(settings.livekit_url, settings.livekit_api_key, secret)
        try:
            return await work(lk)
        finally:
            await lk.aclose()

    where = f"the LiveKit server at LIVEKIT_URL={settings.livekit_url}"
    try:
        lines = asyncio.run(call())
    except api.ServerError as exc:
        hint = ""
        if exc.status in (401, 403):
            hint = " (check LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
        elif "redis" in exc.message.lower() or "not enabled" in exc.message.lower():
            hint = " (a self-hosted LiveKit server needs `redis:` in its config for SIP)"
        detail = f": {exc.message}" if exc.message else ""
        answer = f"HTTP {exc.status}{detail}{hint}"
        print(f"voicedesk: `{command}` failed: {where} answered {answer}", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        print(f"voicedesk: `{command}` failed: cannot reach {where}: {reason}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
