"""FastAPI dependencies for what the lifespan opened (settings, DB pool, LiveKit API client)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from livekit import api
from psycopg_pool import AsyncConnectionPool

from token_server.settings import TokenServerSettings


def get_settings(request: Request) -> TokenServerSettings:
    return request.app.state.settings


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


def get_livekit(request: Request) -> api.LiveKitAPI:
    return request.app.state.livekit


Settings = Annotated[TokenServerSettings, Depends(get_settings)]
Pool = Annotated[AsyncConnectionPool, Depends(get_pool)]
LiveKit = Annotated[api.LiveKitAPI, Depends(get_livekit)]
