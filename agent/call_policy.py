"""Who may reach the agent, and when: business hours, allow and deny lists, a concurrency cap.

Written as a YAML file (``CALL_POLICY_FILE``, see ``call_policy.yaml``) so operations can change
it without touching code. The agent evaluates it when a call arrives and records the decision
on the call either way, so every refusal can be explained afterwards.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voicedesk.config import SettingsError

logger = logging.getLogger("voicedesk.agent.call_policy")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = r"([01][0-9]|2[0-3]):([0-5][0-9])"
_RANGE = re.compile(rf"^{_TIME}-(?:{_TIME}|(24):(00))$")  # 24:00 (midnight) only as an end
_NUMBER_PATTERN = re.compile(r"^\+[0-9]+\*?$")  # callers' numbers always arrive as +E.164

Channel = Literal["web", "pstn_inbound", "pstn_outbound"]


class PolicyMessages(BaseModel):
    model_config = ConfigDict(extra="forbid")
    closed: str = (
        "Thanks for calling. We're closed right now. Please call back during our opening hours. Goodbye."
    )
    denied: str = "Sorry, we can't take your call on this line. Goodbye."
    busy: str = "All of our lines are busy right now. Please try again in a few minutes. Goodbye."


class Decision(BaseModel):
    allowed: bool
    rule: Literal[
        "open", "deny_list", "allow_list", "business_hours", "max_concurrent_calls", "not_applicable"
    ]
    reason: str
    message: str = ""


class CallPolicy(BaseModel):
    """Absent sections allow everything: an empty file is a policy that admits every call."""

    model_config = ConfigDict(extra="forbid")
    applies_to: list[Channel] = Field(default_factory=lambda: ["pstn_inbound"])
    timezone: str = "UTC"
    # {"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}; days not named are closed. None: always open.
    business_hours: dict[str, str] | None = None
    allow: list[str] = Field(default_factory=list, description="E.164 numbers or prefixes ending in *")
    deny: list[str] = Field(default_factory=list)
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    messages: PolicyMessages = Field(default_factory=PolicyMessages)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)") from None
        return value

    @field_validator("allow", "deny")
    @classmethod
    def _numbers(cls, values: list[str]) -> list[str]:
        for v in values:
            if not _NUMBER_PATTERN.match(v):
                raise ValueError(f"{v!r} is not an E.164 number (+ and digits) or such a prefix ending in *")
        return values

    @model_validator(mode="after")
    def _hours(self) -> CallPolicy:
        for days, hours in (self.business_hours or {}).items():
            _expand_days(days)
            for part in hours.split(","):
                if not _RANGE.match(part.strip()):
                    raise ValueError(f"business_hours {days}: {part!r} is not HH:MM-HH:MM")
                start, end = _parse_range(part.strip())
                if start >= end:
                    raise ValueError(f"business_hours {days}: {part!r} ends before it starts")
        return self

    def open_at(self, moment: datetime) -> bool:
        if self.business_hours is None:
            return True
        local = moment.astimezone(ZoneInfo(self.timezone))
        day = DAYS[local.weekday()]
        now = local.time()
        for days, hours in self.business_hours.items():
            if day not in _expand_days(days):
                continue
            for part in hours.split(","):
                start, end = _parse_range(part.strip())
                if start <= now < end:
                    return True
        return False

    def decide(self, channel: str, number: str | None, now: datetime, live_calls: int | None) -> Decision:
        """Deny list, then allow list, then hours, then capacity: the most specific rule wins."""
        if channel not in self.applies_to:
            return Decision(allowed=True, rule="not_applicable", reason=f"policy does not cover {channel}")
        if number and any(_matches(p, number) for p in self.deny):
            return Decision(
                allowed=False,
                rule="deny_list",
                reason="number is on the deny list",
                message=self.messages.denied,
            )
        if self.allow and not (number and any(_matches(p, number) for p in self.allow)):
            return Decision(
                allowed=False,
                rule="allow_list",
                reason="number is not on the allow list",
                message=self.messages.denied,
            )
        if not self.open_at(now):
            return Decision(
                allowed=False,
                rule="business_hours",
                reason=f"outside business hours ({self.timezone})",
                message=self.messages.closed,
            )
        if self.max_concurrent_calls is not None and live_calls is not None:
            if live_calls >= self.max_concurrent_calls:
                return Decision(
                    allowed=False,
                    rule="max_concurrent_calls",
                    reason=f"{live_calls} calls already live (limit {self.max_concurrent_calls})",
                    message=self.messages.busy,
                )
        return Decision(allowed=True, rule="open", reason="within policy")


def _matches(pattern: str, number: str) -> bool:
    return number.startswith(pattern[:-1]) if pattern.endswith("*") else number == pattern


def _expand_days(spec: str) -> set[str]:
    days: set[str] = set()
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"business_hours: unknown day range {part!r} (use mon..sun)")
            i, j = DAYS.index(first), DAYS.index(last)
            days.update(DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1])
        elif part in DAYS:
            days.add(part)
        else:
            raise ValueError(f"business_hours: unknown day {part!r} (use mon..sun)")
    return days


def _parse_range(text: str) -> tuple[time, time]:
    m = _RANGE.match(text)
    assert m is not None
    h1, m1, h2, m2, midnight, _ = m.groups()
    end = time.max if midnight else time(int(h2), int(m2))
    return time(int(h1), int(m1)), end


class PolicyFile:
    """The policy as the file says now: edits apply to the next call, no restart needed.

    A broken edit is logged and the last good policy stays in force, so a typo in production
    never opens or closes the lines by accident.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._policy = load_policy(path)  # at start-up a broken file stops the worker
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self._path.stat().st_mtime_ns if self._path else None
        except OSError:
            return None

    def current(self) -> CallPolicy:
        mtime = self._stat()
        if self._path is not None and mtime != self._mtime:
            self._mtime = mtime
            try:
                self._policy = CallPolicy.model_validate(yaml.safe_load(self._path.read_text()) or {})
                logger.info("call policy reloaded from %s", self._path)
            except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
                logger.error("call policy %s is invalid, keeping the previous one: %s", self._path, exc)
        return self._policy


def load_policy(path: Path | None) -> CallPolicy:
    """No file configured: everything is allowed. A broken file stops the worker at start-up."""
    if path is None:
        return CallPolicy()
    try:
        return CallPolicy.model_validate(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
        print(f"voicedesk: CALL_POLICY_FILE {path} is invalid:\n  {exc}", file=sys.stderr)
        raise SettingsError(2) from None
