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


ACCOUNT_LOCK_AFTER = 5  # wrong PINs in a row, over any number of calls ...
ACCOUNT_LOCK_MINUTES = 15  # ... lock phone verification this long: guessing across calls is slow


class PinVerifier:
    """At most ``max_attempts`` tries per call, and a lock per account across calls: a caller
    guessing PINs, even over many parallel calls with a spoofed number, gets nowhere."""

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
        self.attempts += 1  # before any await: a keypad and a spoken attempt may overlap
        try:
            pin = await asyncio.wait_for(profiles.get_phone_pin(self._pool, self._profile_id), 3.0)
        except Exception:
            logger.exception("could not read the phone PIN")
            self.attempts -= 1
            return "unavailable"
        if pin.hash is None:
            self.attempts -= 1
            return "no_pin"
        if pin.locked:
            return "locked"
        # scrypt is CPU-bound (~15 ms): keep it off the event loop that carries the audio.
        ok = await asyncio.to_thread(check_pin, digits_only(spoken_pin), pin.hash)
        try:
            await profiles.record_pin_attempt(
                self._pool,
                self._profile_id,
                ok=ok,
                lock_after=ACCOUNT_LOCK_AFTER,
                lock_minutes=ACCOUNT_LOCK_MINUTES,
            )
        except Exception:  # noqa: BLE001 - the answer stands; the count is best effort
            logger.warning("could not record the PIN attempt")
        if ok:
            return "verified"
        return "locked" if self.locked else "wrong"
