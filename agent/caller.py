"""Who is calling: their profile and settings, loaded once when the call starts.

A web caller is identified by their verified Firebase token. A phone caller is matched by the
calling number, which anyone can spoof, so their account stays locked until they give their
phone PIN (see ``agent/verification.py``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from agent.call_metadata import CallMetadata
from db import profiles

logger = logging.getLogger("voicedesk.agent.caller")


@dataclass(frozen=True)
class Caller:
    profile: profiles.Profile | None = None
    settings: profiles.UserSettings | None = None
    verified: bool = True  # False for a phone caller until the PIN matches
    number: str | None = None  # their phone number on a phone call
    purpose: str | None = None  # why we called them (outbound)

    @property
    def name(self) -> str | None:
        return self.profile.display_name if self.profile and self.verified else None

    @property
    def known(self) -> bool:
        """Account data may be used: identified and, on the phone, verified."""
        return self.profile is not None and self.verified

    def as_verified(self) -> Caller:
        return dataclasses.replace(self, verified=True)

    def describe(self) -> str:
        """Caller facts for the instructions; nothing about an account before verification."""
        lines: list[str] = []
        if self.purpose:
            lines.append(f"You called this person; the purpose of the call: {self.purpose}")
        if self.profile is None:
            lines.append("An unidentified caller. Do not discuss any account details.")
        elif not self.verified:
            lines.append(
                "A phone caller whose number matches an account, not yet verified. Before you "
                "discuss or share anything about their account (not even their name), ask for "
                "their phone PIN and call verify_caller with it. Until then, help with general "
                "questions only."
            )
        else:
            lines += [
                f"Name: {self.profile.display_name or 'unknown'}",
                f"Plan: {self.profile.subscription_tier}",
            ]
            if self.profile.last_interaction_summary:
                lines.append(f"Last time they called: {self.profile.last_interaction_summary}")
        return "\n".join(lines)


async def load_caller(
    pool: AsyncConnectionPool, meta: CallMetadata | None, number: str | None = None
) -> Caller:
    """Never fails the call: a database fault means an anonymous but working call."""
    if meta is None:
        return Caller()
    phone = meta.is_phone
    base = Caller(verified=not phone, number=number, purpose=meta.purpose)
    try:
        if meta.profile_id:
            profile = await profiles.get_profile(pool, meta.profile_id)
        elif meta.firebase_uid:
            profile = await profiles.get_profile_by_uid(pool, meta.firebase_uid)
        elif phone and number:
            profile = await profiles.get_profile_by_phone(pool, number)
        else:
            profile = None
        if profile is None:
            return base
        return dataclasses.replace(
            base, profile=profile, settings=await profiles.get_user_settings(pool, profile.id)
        )
    except Exception:
        logger.exception("could not load the caller's profile")
        return base
