"""Phone verification: the calling number suggests who is calling, the PIN proves it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Literal

from psycopg_pool import AsyncConnectionPool

from db import profiles
from voicedesk.pins import check_pin, digits_only

logger = logging.getLogger("voicedesk.agent.verification")

Result = Literal["verified", "wrong", "locked", "no_pin", "no_account", "unavailable"]


class PinVerifier:
    """At most ``max_attempts`` tries per call: a caller guessing PINs gets nowhere."""

    def __init__(
        self, pool: AsyncConnectionPool, profile_id: uuid.UUID | None, max_attempts: int = 3
    ) -> None:
        self._pool = pool
        self._profile_id = profile_id
        self._max_attempts = max_attempts
        self.attempts = 0

    @property
    def locked(self) -> bool:
        return self.attempts >= self._max_attempts

    async def verify(self, spoken_pin: str) -> Result:
        if self._profile_id is None:
            return "no_account"
        if self.locked:
            return "locked"
        try:
            stored = await asyncio.wait_for(profiles.get_phone_pin_hash(self._pool, self._profile_id), 3.0)
        except Exception:
            logger.exception("could not read the phone PIN")
            return "unavailable"
        if stored is None:
            return "no_pin"
        self.attempts += 1
        # scrypt is CPU-bound (~15 ms): keep it off the event loop that carries the audio.
        if await asyncio.to_thread(check_pin, digits_only(spoken_pin), stored):
            return "verified"
        return "locked" if self.locked else "wrong"
