"""Repository for `profiles` and `user_settings`: who is calling and how they like to be served."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

_COLUMNS = (
    "id, firebase_uid, phone_e164, display_name, email, subscription_tier, "
    "last_interaction_summary, last_interaction_at"
)


@dataclass(frozen=True)
class Profile:
    id: uuid.UUID
    firebase_uid: str | None
    phone_e164: str | None
    display_name: str | None
    email: str | None
    subscription_tier: str
    last_interaction_summary: str | None
    last_interaction_at: datetime | None


@dataclass(frozen=True)
class UserSettings:
    voice_id: str | None
    greeting: str | None
    language: str
    has_phone_pin: bool = False


async def ensure_profile(
    pool: AsyncConnectionPool,
    *,
    firebase_uid: str,
    email: str | None,
    display_name: str | None,
    phone_e164: str | None,
) -> Profile:
    """Return the profile for ``firebase_uid``, creating it from the token's claims the first time.

    Existing values are kept: a later token does not overwrite what the user changed. A phone
    number already on another profile is not attached (linking numbers needs verification).
    """
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"""
            insert into profiles (firebase_uid, email, display_name, phone_e164)
            values (%(uid)s, %(email)s, %(name)s,
                    case when exists (select 1 from profiles where phone_e164 = %(phone)s)
                         then null else %(phone)s end)
            on conflict (firebase_uid) do update
              set email = coalesce(profiles.email, excluded.email),
                  display_name = coalesce(profiles.display_name, excluded.display_name)
            returning {_COLUMNS}
            """,
            {"uid": firebase_uid, "email": email, "name": display_name, "phone": phone_e164},
        )
        row = await cur.fetchone()
    assert row is not None
    return Profile(**row)


async def remember_last_interaction(pool: AsyncConnectionPool, profile_id: uuid.UUID, summary: str) -> None:
    """What the agent will know about this caller's previous call next time."""
    async with pool.connection() as conn:
        await conn.execute(
            "update profiles set last_interaction_summary = %s, last_interaction_at = now(),"
            " updated_at = now() where id = %s",
            (summary, profile_id),
        )


async def get_profile(pool: AsyncConnectionPool, profile_id: uuid.UUID | str) -> Profile | None:
    async with pool.connection() as conn:
        cur = await conn.execute(f"select {_COLUMNS} from profiles where id = %s", (profile_id,))
        row = await cur.fetchone()
    return Profile(**row) if row else None


async def get_profile_by_uid(pool: AsyncConnectionPool, firebase_uid: str) -> Profile | None:
    async with pool.connection() as conn:
        cur = await conn.execute(f"select {_COLUMNS} from profiles where firebase_uid = %s", (firebase_uid,))
        row = await cur.fetchone()
    return Profile(**row) if row else None


async def get_profile_by_phone(pool: AsyncConnectionPool, phone_e164: str) -> Profile | None:
    """The profile whose phone number is ``phone_e164``: how a phone caller meets their account."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"select {_COLUMNS} from profiles where phone_e164 = %s", (phone_e164,))
        row = await cur.fetchone()
    return Profile(**row) if row else None


SETTINGS_COLUMNS = frozenset({"voice_id", "greeting", "language", "phone_pin_hash"})


async def update_user_settings(
    pool: AsyncConnectionPool, profile_id: uuid.UUID | str, changes: dict[str, str | None]
) -> UserSettings:
    """Set the given columns (others stay as they are) and return the settings as stored."""
    unknown = set(changes) - SETTINGS_COLUMNS
    if unknown:
        raise ValueError(f"not a settings column: {', '.join(sorted(unknown))}")
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in ("profile_id", *changes))
    values = sql.SQL(", ").join(sql.Placeholder() for _ in range(len(changes) + 1))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in (*changes, "updated_at")
    )
    async with pool.connection() as conn:
        await conn.execute(
            sql.SQL(
                "insert into user_settings ({columns}) values ({values}) "
                "on conflict (profile_id) do update set {updates}"
            ).format(columns=columns, values=values, updates=updates),
            (profile_id, *changes.values()),
        )
    settings = await get_user_settings(pool, profile_id)
    assert settings is not None
    return settings


@dataclass(frozen=True)
class PhonePin:
    hash: str | None
    locked: bool  # too many wrong PINs lately, on any call


async def get_phone_pin(pool: AsyncConnectionPool, profile_id: uuid.UUID | str) -> PhonePin:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select phone_pin_hash, coalesce(phone_pin_locked_until > now(), false) as locked"
            " from user_settings where profile_id = %s",
            (profile_id,),
        )
        row = await cur.fetchone()
    return PhonePin(row["phone_pin_hash"], row["locked"]) if row else PhonePin(None, False)


async def record_pin_attempt(
    pool: AsyncConnectionPool, profile_id: uuid.UUID | str, *, ok: bool, lock_after: int, lock_minutes: int
) -> None:
    """A right PIN clears the count; ``lock_after`` wrong ones in a row lock it for a while."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            update user_settings set
              phone_pin_failures = case when %(ok)s then 0 else phone_pin_failures + 1 end,
              phone_pin_locked_until = case
                when %(ok)s then null
                when phone_pin_failures + 1 >= %(lock_after)s then now() + make_interval(mins => %(mins)s)
                else phone_pin_locked_until end
            where profile_id = %(id)s
            """,
            {"ok": ok, "lock_after": lock_after, "mins": lock_minutes, "id": profile_id},
        )


async def get_user_settings(pool: AsyncConnectionPool, profile_id: uuid.UUID | str) -> UserSettings | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select voice_id, greeting, language, phone_pin_hash is not null as has_phone_pin"
            " from user_settings where profile_id = %s",
            (profile_id,),
        )
        row = await cur.fetchone()
    return UserSettings(**row) if row else None
