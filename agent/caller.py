"""Who is calling: their profile and settings, loaded once when the call starts."""

from __future__ import annotations

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

    @property
    def name(self) -> str | None:
        return self.profile.display_name if self.profile else None

    def describe(self) -> str:
        """Caller facts for the instructions; nothing when we do not know who is calling."""
        if self.profile is None:
            return "An unidentified caller. Do not discuss any account details."
        lines = [f"Name: {self.profile.display_name or 'unknown'}", f"Plan: {self.profile.subscription_tier}"]
        if self.profile.last_interaction_summary:
            lines.append(f"Last time they called: {self.profile.last_interaction_summary}")
        return "\n".join(lines)


async def load_caller(pool: AsyncConnectionPool, meta: CallMetadata | None) -> Caller:
    """Never fails the call: a database fault means an anonymous but working call."""
    if meta is None or (meta.profile_id is None and meta.firebase_uid is None):
        return Caller()
    try:
        profile = (
            await profiles.get_profile(pool, meta.profile_id)
            if meta.profile_id
            else await profiles.get_profile_by_uid(pool, meta.firebase_uid or "")
        )
        if profile is None:
            return Caller()
        return Caller(profile, await profiles.get_user_settings(pool, profile.id))
    except Exception:
        logger.exception("could not load the caller's profile")
        return Caller()
