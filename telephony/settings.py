"""Telephony configuration for ``voicedesk sip setup|status``, validated before LiveKit is called.

Load it with :func:`voicedesk.config.load_settings`, so that a malformed number or address names
its variable, instead of LiveKit rejecting a half-built trunk.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicedesk import e164
from voicedesk.config import CommaList, check_agent_name

_E164 = re.compile(e164.PATTERN)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_SIP_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def _e164(number: str) -> str:
    if not _E164.match(number):
        raise ValueError(f"{number!r} is not an E.164 number: '+', country code, number, no spaces")
    return number


class LiveKitApiSettings(BaseSettings):
    """What ``voicedesk sip status`` needs: the LiveKit server and an admin key for it."""

    # env_ignore_empty: ``VAR=`` means unset, as most deployment tools write it.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    livekit_url: str = Field(
        pattern=r"^(wss?|https?)://",
        description="LiveKit server URL; its SIP service holds the trunks and dispatch rules.",
        examples=["wss://my-project.livekit.cloud"],
    )
    livekit_api_key: str = Field(min_length=1, description="LiveKit API key.", examples=["devkey"])
    livekit_api_secret: SecretStr = Field(
        min_length=1, description="LiveKit API secret.", examples=["a-long-random-secret"]
    )


class TelephonySettings(LiveKitApiSettings):
    """Everything ``voicedesk sip setup`` needs; field order matters for cross-field checks."""

    agent_name: str = Field(
        default="voicedesk",
        description="Agent the inbound dispatch rule sends every caller to (the worker's AGENT_NAME).",
        examples=["voicedesk"],
    )

    sip_inbound_numbers: CommaList = Field(
        min_length=1,
        description="The company's phone numbers (Twilio) that ring the agent, E.164, comma-separated.",
        examples=["+14155550100,+14155550101"],
    )
    sip_inbound_username: str | None = Field(
        default=None,
        min_length=1,
        description="Digest-auth user name the carrier must present on inbound calls (with the "
        "password). Not for Twilio: its Elastic SIP trunks do not authenticate, allow its addresses.",
        examples=["voicedesk-inbound"],
    )
    sip_inbound_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description="Digest-auth password for inbound calls (with SIP_INBOUND_USERNAME).",
        examples=["a-long-random-password"],
    )
    sip_inbound_allowed_addresses: CommaList = Field(
        default_factory=list,
        validate_default=True,
        description="IP addresses or CIDR ranges allowed to send calls (e.g. Twilio's signalling "
        "ranges), comma-separated; may be empty when SIP_INBOUND_USERNAME/PASSWORD are set.",
        examples=["54.172.60.0/30,54.244.51.0/30"],
    )

    sip_outbound_address: str | None = Field(
        default=None,
        description="SIP domain outbound calls go to (Twilio's termination SIP URI), host[:port]. "
        "Unset: no outbound trunk, the agent cannot dial out.",
        examples=["voicedesk.pstn.twilio.com"],
    )
    sip_outbound_transport: Literal["auto", "udp", "tcp", "tls"] = Field(
        default="auto", description="SIP transport for outbound calls.", examples=["tcp"]
    )
    sip_outbound_number: str | None = Field(
        default=None,
        description="Caller ID for outbound calls, E.164. Unset: the first of SIP_INBOUND_NUMBERS.",
        examples=["+14155550100"],
    )
    sip_outbound_username: str | None = Field(
        default=None,
        min_length=1,
        description="User name of the credential list on the Twilio trunk (termination).",
        examples=["voicedesk-outbound"],
    )
    sip_outbound_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        validate_default=True,
        description="Password of that credential (with SIP_OUTBOUND_USERNAME).",
        examples=["a-long-random-password"],
    )

    sip_inbound_trunk_name: str = Field(
        default="voicedesk-inbound",
        min_length=1,
        description="Name of the inbound trunk in LiveKit; `sip setup` finds and updates it by name.",
        examples=["voicedesk-inbound"],
    )
    sip_outbound_trunk_name: str = Field(
        default="voicedesk-outbound",
        min_length=1,
        description="Name of the outbound trunk in LiveKit; the agent dials out through it.",
        examples=["voicedesk-outbound"],
    )
    sip_dispatch_rule_name: str = Field(
        default="voicedesk-inbound",
        min_length=1,
        description="Name of the dispatch rule that puts each caller in a room with the agent.",
        examples=["voicedesk-inbound"],
    )

    @field_validator("agent_name")
    @classmethod
    def _agent_name(cls, value: str) -> str:
        return check_agent_name(value)

    @field_validator("sip_inbound_numbers")
    @classmethod
    def _inbound_numbers(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_e164(number) for number in value))

    @field_validator("sip_inbound_password", "sip_outbound_password")
    @classmethod
    def _password_with_username(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        prefix = "SIP_INBOUND" if info.field_name == "sip_inbound_password" else "SIP_OUTBOUND"
        username = info.data.get(f"{prefix.lower()}_username")
        if (username is None) != (value is None):
            raise ValueError(f"set {prefix}_USERNAME and {prefix}_PASSWORD together, or neither")
        return value

    @field_validator("sip_inbound_allowed_addresses")
    @classmethod
    def _allowed_addresses(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or CIDR range") from None
        if not value and info.data.get("sip_inbound_username") is None:
            # Either check is enough for LiveKit; neither would let anyone on the internet call in.
            raise ValueError(
                "empty, and SIP_INBOUND_USERNAME/PASSWORD are not set either: allow the carrier's "
                "signalling addresses (for Twilio, its published ranges) or have it authenticate"
            )
        return list(dict.fromkeys(value))

    @field_validator("sip_outbound_address")
    @classmethod
    def _outbound_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.partition(":")
        if value.lower().startswith(("sip:", "sips:")) or not _SIP_HOST.match(host):
            raise ValueError(f"{value!r}: give a host name or IP address, optionally :port (no 'sip:')")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{value!r}: the port must be 1-65535")
        return value

    @field_validator("sip_outbound_number")
    @classmethod
    def _outbound_number(cls, value: str | None) -> str | None:
        return None if value is None else _e164(value)

    @property
    def outbound_caller_id(self) -> str:
        """The number outbound calls come from: SIP_OUTBOUND_NUMBER, else the first inbound number."""
        return self.sip_outbound_number or self.sip_inbound_numbers[0]
