"""``GET /recordings/{path}``: play a locally stored call recording through a signed URL.

No Firebase sign-in here: an ``<audio>`` element cannot send a bearer header. The operator got the
URL from ``GET /calls/{id}/recording`` (operators only), and its HMAC signature binds the path
and the expiry, so the URL is the credential and stops working after ``RECORDING_URL_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse

from db.storage import CONTENT_TYPE, StorageSettings, local_file, verify_local_signature

router = APIRouter(tags=["recordings"])


def get_storage_settings(request: Request) -> StorageSettings:
    return request.app.state.storage


Storage = Annotated[StorageSettings, Depends(get_storage_settings)]


@router.get(
    "/recordings/{path:path}",
    response_class=FileResponse,
    summary="Stream a call recording (signed URL)",
    description="Serves a recording kept by the local storage backend as `audio/ogg`, with HTTP "
    "Range support for seeking. `expires` and `signature` come from `GET /calls/{call_id}/recording`; "
    "an altered, foreign or expired URL gets 403.",
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        206: {"description": "the requested byte range", "content": {CONTENT_TYPE: {}}},
        403: {"description": "signature invalid or expired"},
        404: {"description": "no such recording"},
    },
)
async def get_recording(
    path: str,
    storage: Storage,
    expires: Annotated[int, Query(description="Unix time the URL expires at")],
    signature: Annotated[str, Query(max_length=128, description="HMAC-SHA256 of path and expiry")],
) -> FileResponse:
    if storage.recordings_backend != "local":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "recordings are not served by this server")
    if not verify_local_signature(storage, path, expires, signature):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "recording link is invalid or has expired")
    file = await asyncio.to_thread(local_file, storage, path)
    if file is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "recording not found")
    # private: personal data; the URL expires soon anyway, so shared caches must not keep it.
    return FileResponse(
        file,
        media_type=CONTENT_TYPE,
        headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"},
    )
