"""`GET/PUT /me/settings`: a signed-in user's own settings, including the phone PIN.

The PIN is what unlocks the account on a phone call (see agent/verification.py). It is write-only:
stored as an scrypt hash, reported back only as ``phone_pin_set``.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from db import profiles
from token_server.auth import CurrentUser
from token_server.caller_profile import ensure_caller_profile
from token_server.dependencies import Pool, Settings
from token_server.settings import VOICE_ID_PATTERN, TokenServerSettings
from voicedesk.pins import hash_pin

log = logging.getLogger(__name__)

router = APIRouter(prefix="/me", tags=["me"])


class SettingsView(BaseModel):
    voice_id: str | None = Field(description="ElevenLabs voice the agent speaks with; null: the default")
    greeting: str | None = Field(description="The agent's first words on web calls; {name} is filled in")
    language: str
    phone_pin_set: bool = Field(description="Whether a phone PIN is set (the PIN itself is never returned)")


class SettingsUpdate(BaseModel):
    """Fields left out stay as they are; ``null`` clears a field (a null PIN removes it)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    voice_id: str | None = Field(
        default=None,
        pattern=VOICE_ID_PATTERN,
        description="One of the voices GET /config lists; null: the agent's default voice",
    )
    greeting: str | None = Field(default=None, min_length=1, max_length=300)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["en", "en-US"])
    phone_pin: str | None = Field(
        default=None, pattern=r"^[0-9]{4,8}$", description="4 to 8 digits, for verification on phone calls"
    )


def _view(settings: profiles.UserSettings | None) -> SettingsView:
    if settings is None:
        return SettingsView(voice_id=None, greeting=None, language="en", phone_pin_set=False)
    return SettingsView(
        voice_id=settings.voice_id,
        greeting=settings.greeting,
        language=settings.language,
        phone_pin_set=settings.has_phone_pin,
    )


@router.get("/settings", response_model=SettingsView, summary="Your settings")
async def get_settings(user: CurrentUser, pool: Pool) -> SettingsView:
    profile = await ensure_caller_profile(pool, user)
    return _view(await profiles.get_user_settings(pool, profile.id))


def _check_voice(body: SettingsUpdate, settings: TokenServerSettings) -> None:
    """A voice must be one of VOICE_CHOICES: the agent speaks with whatever is stored here."""
    if body.voice_id is None or body.voice_id in settings.voice_ids:
        return
    offered = ", ".join(f"{v.id} ({v.name})" for v in settings.voice_choices)
    error = {
        "type": "value_error",
        "loc": ("body", "voice_id"),
        "msg": f"voice_id must be one of the voices offered: {offered}",
        "input": body.voice_id,
    }
    raise RequestValidationError([error])


@router.put("/settings", response_model=SettingsView, summary="Change your settings")
async def put_settings(
    body: SettingsUpdate, user: CurrentUser, pool: Pool, settings: Settings
) -> SettingsView:
    _check_voice(body, settings)
    profile = await ensure_caller_profile(pool, user)
    changes: dict[str, str | None] = {}
    for field in body.model_fields_set & {"voice_id", "greeting", "language"}:
        changes[field] = getattr(body, field)
    if "phone_pin" in body.model_fields_set:
        # scrypt takes ~15 ms of CPU: off the event loop.
        changes["phone_pin_hash"] = await _hash(body.phone_pin) if body.phone_pin else None
    if not changes:
        return _view(await profiles.get_user_settings(pool, profile.id))
    stored = await profiles.update_user_settings(pool, profile.id, changes)
    log.info("uid=%s changed settings: %s", user.uid, ", ".join(sorted(body.model_fields_set)))
    return _view(stored)


async def _hash(pin: str) -> str:
    return await asyncio.to_thread(hash_pin, pin)
