"""``GET /config``: what the browser app needs before anyone signs in (public, no secrets).

The Firebase web configuration (its API key is public by design: it identifies the project, it
does not authorise anything), whether the Auth emulator is in use, whether Google sign-in is
offered, and the voices a user may choose in their settings.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from token_server.dependencies import Settings

router = APIRouter(tags=["client"])

CACHE_SECONDS = 60  # short: a changed setting reaches open tabs on their next load


class _CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class FirebaseWebConfig(_CamelModel):
    api_key: str = Field(description="Firebase Web API key (public)")
    auth_domain: str = Field(description="Firebase Auth domain, e.g. <project>.firebaseapp.com")
    project_id: str


class Voice(_CamelModel):
    id: str = Field(description="ElevenLabs voice id; the value of voice_id in PUT /me/settings")
    name: str


class ClientConfig(_CamelModel):
    firebase: FirebaseWebConfig
    auth_emulator_url: str | None = Field(
        description="Firebase Auth emulator URL (dev and test); null with real Firebase"
    )
    google_sign_in: bool = Field(description="Whether to offer Sign in with Google")
    voices: list[Voice] = Field(description="Voices a user may pick in their settings")


@router.get(
    "/config",
    response_model=ClientConfig,
    summary="Configuration for the browser app (public)",
    description="Firebase web configuration, Auth emulator URL (null unless in dev/test with the "
    "emulator), Google sign-in switch and the voices offered. Cached briefly.",
)
async def get_client_config(settings: Settings, response: Response) -> ClientConfig:
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return ClientConfig(
        firebase=FirebaseWebConfig(
            api_key=settings.firebase_web_api_key or "",
            auth_domain=settings.firebase_auth_domain or "",
            project_id=settings.firebase_project_id,
        ),
        auth_emulator_url=settings.auth_emulator_url,
        google_sign_in=settings.google_sign_in_enabled,
        voices=[Voice(id=v.id, name=v.name) for v in settings.voice_choices],
    )
