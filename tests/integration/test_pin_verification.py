"""Phone PIN verification against real Postgres: per call and per account, across calls."""

from __future__ import annotations

import uuid

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.verification import ACCOUNT_LOCK_AFTER, PinVerifier
from voicedesk.pins import hash_pin


@pytest.fixture
async def pool(database_url: str):
    async with AsyncConnectionPool(
        database_url, kwargs={"row_factory": dict_row, "autocommit": True}
    ) as pool:
        yield pool


@pytest.fixture
async def profile_id(pool) -> uuid.UUID:
    async with pool.connection() as conn:
        cur = await conn.execute("insert into profiles (display_name) values ('Pin Tester') returning id")
        row = await cur.fetchone()
        await conn.execute(
            "insert into user_settings (profile_id, phone_pin_hash) values (%s, %s)",
            (row["id"], hash_pin("4821")),
        )
    return row["id"]


async def test_three_wrong_pins_lock_the_call(pool, profile_id) -> None:
    call = PinVerifier(pool, profile_id, max_attempts=3)
    assert [await call.verify(pin) for pin in ("1111", "2222", "3333")] == ["wrong", "wrong", "locked"]
    assert await call.verify("4821") == "locked", "the right PIN no longer helps on this call"


async def test_guessing_over_many_calls_locks_the_account(pool, profile_id) -> None:
    guesses = [await PinVerifier(pool, profile_id).verify(f"{n:04d}") for n in range(ACCOUNT_LOCK_AFTER)]
    assert guesses[-1] == "wrong" and set(guesses) == {"wrong"}, "one guess per call, each a new call"
    assert await PinVerifier(pool, profile_id).verify("4821") == "locked", "even the right PIN, for a while"

    async with pool.connection() as conn:  # the lock expires
        await conn.execute(
            "update user_settings set phone_pin_locked_until = now() - interval '1 second'"
            " where profile_id = %s",
            (profile_id,),
        )
    assert await PinVerifier(pool, profile_id).verify("4 8 2 1") == "verified"
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select phone_pin_failures from user_settings where profile_id = %s", (profile_id,)
        )
        assert (await cur.fetchone())["phone_pin_failures"] == 0, "a right PIN clears the count"


async def test_without_a_pin_or_an_account_nothing_is_verified(pool) -> None:
    assert await PinVerifier(pool, None).verify("4821") == "no_account"
    async with pool.connection() as conn:
        cur = await conn.execute("insert into profiles (display_name) values ('No Pin') returning id")
        no_pin = (await cur.fetchone())["id"]
    verifier = PinVerifier(pool, no_pin)
    assert await verifier.verify("4821") == "no_pin"
    assert verifier.attempts == 0, "asking without a PIN set costs no attempt"
