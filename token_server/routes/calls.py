"""The operator API: browse, filter and search calls, read one in full, play its recording.

Operators only (Firebase custom claim ``operator: true``). Everything here reads what the agent
wrote; nothing changes a call.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, BeforeValidator, Field

from db import call_history, storage
from token_server.dependencies import Pool, Settings
from token_server.operators import Operator
from token_server.routes.recordings import Storage

log = logging.getLogger(__name__)

Channel = Literal["web", "pstn_inbound", "pstn_outbound"]
CallStatus = Literal["pending", "ringing", "in_progress", "completed", "failed", "no_answer", "busy"]
Outcome = Literal["resolved", "escalated", "abandoned", "unresolved", "follow_up"]
Role = Literal["user", "assistant", "tool"]
# No NUL: Postgres text cannot hold it, so such a query could only fail.
SEARCH_PATTERN = r"^[^\x00]*$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    """Only what the schema promises (RFC 3339 with an offset): no unix numbers, no local times.

    A time without an offset would mean something different to each operator's time zone.
    """
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a UTC offset, e.g. 2026-11-21T09:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong, in words")


class CallSummary(BaseModel):
    """One row of the call list."""

    id: uuid.UUID
    profile_id: uuid.UUID | None = Field(description="The caller's profile, if identified")
    caller_name: str | None = Field(description="The profile's display name")
    channel: Channel
    direction: Literal["inbound", "outbound"]
    status: CallStatus
    from_number: str | None = Field(description="Calling number of a phone call")
    to_number: str | None = Field(description="Number called: ours (inbound) or the customer's (outbound)")
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    end_reason: str | None
    outcome: Outcome | None = Field(description="Set with the summary after the call")
    degraded: bool = Field(description="Part of the record could not be kept (e.g. a provider failed)")
    summary: str | None
    has_recording: bool


class CallPage(BaseModel):
    items: list[CallSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class Turn(BaseModel):
    """One turn of the conversation; tool turns carry the tool's name, arguments and result."""

    sequence: int
    role: Role
    content: str
    started_at: datetime | None
    ended_at: datetime | None
    interrupted: bool
    latency: dict[str, Any] = Field(description="Per-turn latency figures in milliseconds (e2e_ms, ...)")
    tool_name: str | None
    tool_arguments: Any = None
    tool_result: Any = None


class CallEvent(BaseModel):
    sequence: int
    kind: str = Field(description="joined, left, error, policy decision, ...")
    detail: dict[str, Any]
    occurred_at: datetime


class LatencyStats(BaseModel):
    count: int = Field(description="Turns that measured this figure")
    p50: float
    p95: float
    mean: float
    max: float


class LatencyMetrics(BaseModel):
    """Per-turn latency over the call, in milliseconds; null when no turn measured it."""

    e2e_ms: LatencyStats | None = Field(description="End of the caller's speech to the agent's first audio")
    llm_ttft_ms: LatencyStats | None = Field(description="LLM time to first token")
    tts_ttfb_ms: LatencyStats | None = Field(description="TTS time to first byte")
    stt_ms: LatencyStats | None = Field(description="Speech-to-text final transcript delay")
    end_of_utterance_ms: LatencyStats | None = Field(description="End-of-turn detection delay")


class CallMetrics(BaseModel):
    turns: int
    user_turns: int
    assistant_turns: int
    tool_turns: int
    interrupted_turns: int
    latency: LatencyMetrics


class CallDetail(CallSummary):
    """A call in full: the list fields plus transcript, events, recording and metrics."""

    room_name: str
    started_by: str | None
    metadata: dict[str, Any]
    recording_path: str | None
    recording_duration_seconds: float | None
    turns: list[Turn]
    events: list[CallEvent]
    metrics: CallMetrics


class TranscriptHit(BaseModel):
    call_id: uuid.UUID
    sequence: int
    role: Role
    started_at: datetime | None = Field(description="When the turn started")
    call_started_at: datetime
    channel: Channel
    caller_name: str | None
    snippet: str = Field(description="Matching passage, hit words marked «like this» (plain text)")
    rank: float


class TranscriptSearch(BaseModel):
    items: list[TranscriptHit]


class RecordingLink(BaseModel):
    url: str = Field(description="Short-lived URL that streams the recording (audio/ogg)")
    expires_at: datetime


_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "no valid Firebase ID token"},
    403: {"model": ErrorResponse, "description": "signed in, but not an operator"},
    503: {"model": ErrorResponse, "description": "database (or storage) unavailable; retry"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "no such call"}}


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request, _: Operator) -> None:
    """A mistyped filter (``chanel=web``) must not silently return every call: 422 naming it.

    Depends on the operator check (cached per request), so a stranger gets 401/403, not a list
    of parameters.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": f"unknown query parameter {name!r}; accepted: {accepted}",
                    "input": request.query_params.get(name),
                }
                for name in dict.fromkeys(unknown)
            ]
        )


router = APIRouter(
    prefix="/calls",
    tags=["operator: calls"],
    responses=_AUTH_ERRORS,
    dependencies=[Depends(reject_unknown_query_parameters)],
)


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn an unavailable or overloaded database into a 503 the client may retry."""
    try:
        yield
    except psycopg.errors.QueryCanceled:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "query took too long; narrow the filters and retry"
        ) from None
    except (psycopg.OperationalError, PoolTimeout) as exc:
        log.warning("database unavailable for the operator API: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable; retry shortly"
        ) from None


SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=SEARCH_PATTERN,
        description='Web-search syntax over transcripts: words, "a phrase", -excluded, or',
    ),
]


@router.get(
    "",
    response_model=CallPage,
    summary="List calls, newest first",
    description="Filters combine with AND. `since` is inclusive and `until` exclusive (RFC 3339 "
    "with an offset, e.g. `2026-11-21T09:00:00Z`). `q` keeps calls with a transcript turn "
    "matching it (stemmed English full text). Page with `next_cursor`.",
)
async def list_calls(
    operator: Operator,
    pool: Pool,
    since: Annotated[Timestamp | None, Query(description="Calls started at or after this time")] = None,
    until: Annotated[Timestamp | None, Query(description="Calls started before this time")] = None,
    channel: Annotated[Channel | None, Query()] = None,
    status_: Annotated[CallStatus | None, Query(alias="status")] = None,
    profile_id: Annotated[uuid.UUID | None, Query(description="Only this caller's calls")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=SEARCH_PATTERN, description="Transcript search"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page (opaque)")
    ] = None,
) -> CallPage:
    try:
        async with database_errors():
            page = await call_history.list_calls(
                pool,
                since=since,
                until=until,
                channel=channel,
                status=status_,
                profile_id=profile_id,
                q=q,
                limit=limit,
                cursor=cursor,
            )
    except call_history.InvalidCursor as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(exc), "input": cursor}]
        ) from None
    return CallPage.model_validate({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/search",
    response_model=TranscriptSearch,
    summary="Search transcripts",
    description="Turns whose text matches `q` (stemmed English full text, web-search syntax), "
    "best match first, each with its call and a snippet.",
)
async def search_transcripts(
    operator: Operator,
    pool: Pool,
    q: SearchText,
    limit: Annotated[int, Query(ge=1, le=100, description="Maximum number of turns")] = 20,
) -> TranscriptSearch:
    async with database_errors():
        hits = await call_history.search_transcripts(pool, q, limit)
    return TranscriptSearch.model_validate({"items": hits})


CallId = Annotated[uuid.UUID, Path(description="The call's id")]


@router.get(
    "/{call_id}",
    response_model=CallDetail,
    summary="One call in full",
    description="Turns in order (with per-turn latency and tool calls), events, summary, outcome, "
    "recording and latency percentiles over the call.",
    responses=_NOT_FOUND,
)
async def get_call(operator: Operator, pool: Pool, call_id: CallId) -> CallDetail:
    async with database_errors():
        detail = await call_history.get_call_detail(pool, call_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id}")
    return CallDetail.model_validate(detail)


@router.get(
    "/{call_id}/recording",
    response_model=RecordingLink,
    summary="A short-lived URL to play the call's recording",
    description="The URL streams `audio/ogg` (with Range support) until `expires_at`; ask again "
    "for a fresh one.",
    responses={404: {"model": ErrorResponse, "description": "no such call, or it has no recording"}},
)
async def get_recording_link(
    operator: Operator, pool: Pool, settings: Settings, storage_settings: Storage, call_id: CallId
) -> RecordingLink:
    async with database_errors():
        call = await call_history.get_recording(pool, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id}")
    path = call["recording_path"]
    if not path or not await storage.recording_exists(storage_settings, path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"call {call_id} has no recording")
    try:
        url, expires_at = await storage.signed_recording_url(
            storage_settings, path, public_base_url=settings.public_base_url
        )
    except storage.RecordingNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"call {call_id} has no recording") from None
    except storage.StorageError as exc:
        log.warning("cannot sign recording of call %s: %s", call_id, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "recording storage unavailable") from None
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"call {call_id} has no playable recording") from None
    log.info("operator uid=%s opened the recording of call %s", operator.uid, call_id)
    return RecordingLink(url=url, expires_at=expires_at)
