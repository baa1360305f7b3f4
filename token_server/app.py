"""The FastAPI application: routers, CORS, and a lifespan owning the DB pool and LiveKit client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from livekit import api

from db.embedded import resolve_database_url
from db.pool import open_pool
from db.settings import DatabaseSettings
from db.storage import StorageSettings
from token_server.auth import FirebaseTokenVerifier
from token_server.routes import calls, client_config, health, me, monitor, outbound, recordings, token
from token_server.settings import TokenServerSettings
from token_server.web import web_app_mount
from voicedesk.config import load_settings
from voicedesk.logging_setup import RequestIdMiddleware

log = logging.getLogger(__name__)

LIVEKIT_API_TIMEOUT_SECONDS = 5.0


def create_app(
    settings: TokenServerSettings,
    db_settings: DatabaseSettings | None = None,
    storage_settings: StorageSettings | None = None,
) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts, so this is cheap and testable."""
    db_settings = db_settings or load_settings(DatabaseSettings)
    storage_settings = storage_settings or load_settings(StorageSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.storage = storage_settings
        # Firebase first: a bad credential should stop start-up before anything is opened.
        app.state.firebase = FirebaseTokenVerifier(settings)
        # The embedded dev server may take seconds to start; keep the loop free meanwhile.
        database_url = await asyncio.to_thread(resolve_database_url, db_settings)
        pool = await open_pool(database_url, max_size=db_settings.db_pool_max_size)
        # failover=False: on a self-hosted server there is no other region to retry against,
        # and a readiness probe must report, not retry.
        livekit = api.LiveKitAPI(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            timeout=aiohttp.ClientTimeout(total=LIVEKIT_API_TIMEOUT_SECONDS),
            failover=False,
        )
        app.state.pool = pool
        app.state.livekit = livekit
        log.info(
            "token server ready (APP_ENV=%s, emulated auth=%s)", settings.app_env, settings.emulated_auth
        )
        try:
            yield
        finally:
            await livekit.aclose()
            await pool.close()

    app = FastAPI(
        title="voicedesk token server",
        summary="Firebase-authenticated LiveKit token endpoint (LiveKit token-source contract), "
        "the operator API (calls, transcripts, recordings, monitoring) and the browser app.",
        lifespan=lifespan,
        docs_url="/docs" if settings.app_env != "production" else None,
        redoc_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,  # auth is a bearer header, never a cookie
        max_age=600,
    )
    app.add_middleware(RequestIdMiddleware)  # every log line of a request carries its id
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.include_router(health.router)
    app.include_router(token.router)
    app.include_router(calls.router)
    app.include_router(outbound.router)
    app.include_router(me.router)
    app.include_router(recordings.router)
    app.include_router(monitor.router)
    app.include_router(client_config.router)
    # Last: the browser app answers only paths no API route knows.
    supabase = storage_settings.recordings_backend == "supabase"
    recordings_url = storage_settings.supabase_url if supabase else None
    app.router.routes.append(web_app_mount(settings, recordings_url=recordings_url))
    return app


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape, with a plain reason for refused extra fields and no echoed input."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for err in exc.errors():
        item = {"type": err["type"], "loc": list(err["loc"]), "msg": err["msg"].removeprefix("Value error, ")}
        if err["type"] == "extra_forbidden":
            field = ".".join(str(part) for part in err["loc"][1:])
            item["msg"] = (
                f"{field} is not accepted: the server configures the room; a client may only "
                "choose room_config.agents[0].agent_name"
                if "room_config" in err["loc"]
                else f"unknown field {field}"
            )
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (each worker process loads settings itself)."""
    return create_app(load_settings(TokenServerSettings))
