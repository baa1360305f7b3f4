"""The signed-in user's profile, made from their token's claims the first time they show up."""

from __future__ import annotations

import logging

import psycopg
from fastapi import HTTPException, status
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from db import profiles
from token_server.auth import FirebaseUser

log = logging.getLogger(__name__)


async def ensure_caller_profile(pool: AsyncConnectionPool, user: FirebaseUser) -> profiles.Profile:
    """503 (retry) rather than 500 when the database is away."""
    try:
        return await profiles.ensure_profile(
            pool,
            firebase_uid=user.uid,
            email=user.email,
            display_name=user.name,
            phone_e164=user.phone_number,
        )
    except (psycopg.OperationalError, PoolTimeout) as exc:
        log.warning("database unavailable while loading uid=%s's profile: %s", user.uid, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable; retry shortly"
        ) from None
