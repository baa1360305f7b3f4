"""Log output for both services: JSON lines in production, readable lines in development.

The worker's handlers are LiveKit's (its CLI logs JSON for ``start`` and colours for ``dev``), and
its job processes forward every record to the worker process, which adds ``pid``, ``job_id``,
``room`` and ``room_id`` while the job runs; ``ctx.log_context_fields`` adds ``call_id`` in the
job process. Here we only add what LiveKit lacks: redaction on every handler
(:func:`install_redaction`), ``call_id`` on the worker's own lines about a call
(:class:`CallIdFromRoomFilter`), and, for the token server, a uvicorn logging config
(:func:`token_server_log_config`) with a request id per HTTP request (:class:`RequestIdMiddleware`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from voicedesk.redaction import RedactingFilter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# LogRecord attributes that are not ``extra`` fields (and uvicorn's ANSI-coloured message copy)
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and not k.startswith("_")}


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Add one RedactingFilter to every handler of ``logger`` (default: root). Idempotent.

    Filters sit on handlers, not loggers, because a logger's filters do not see records that
    propagate from child loggers. Call it after the handlers exist: in the worker process on
    ``worker_started`` (LiveKit's CLI adds its handler just before), in each job process in
    ``prewarm`` (redacting before records are forwarded to the worker process). REDACTION_ENABLED
    is read when the first record passes.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            # first, so that every later filter and the formatter see redacted text
            handler.filters.insert(0, RedactingFilter())


_CALL_ROOM = re.compile(r"call-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z")


class CallIdFromRoomFilter(logging.Filter):
    """Set ``call_id`` from a ``room`` named ``call-<call id>`` when the record has none.

    The worker process logs about a job (received, assigned, process exited) with ``room`` only,
    and a job process's first lines come before the entrypoint sets ``call_id``; the token server
    names every web call's room after its call id, so this closes both gaps.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None and isinstance(
            room := getattr(record, "room", None), str
        ):
            if m := _CALL_ROOM.match(room):
                record.call_id = m.group(1)
        return True


def install_call_id_from_room(logger: logging.Logger | None = None) -> None:
    """Add a CallIdFromRoomFilter to every handler of ``logger`` (default: root). Idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, CallIdFromRoomFilter) for f in handler.filters):
            handler.addFilter(CallIdFromRoomFilter())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, then every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    """``time level logger: message {extra fields}`` for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # fields go after the message, before a traceback
        return f"{head} {json.dumps(extras, default=str, ensure_ascii=False)}{sep}{tail}"


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every record logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (rid := request_id.get()) is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")


class RequestIdMiddleware:
    """ASGI middleware: take ``X-Request-ID`` from a proxy (if sane) or make one, log and echo it.

    Pure ASGI (no BaseHTTPMiddleware) so the id's context variable is still set when uvicorn
    writes the access-log line for the response.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def token_server_log_config(json_logs: bool, level: str = "INFO") -> dict[str, Any]:
    """uvicorn ``log_config``: one stdout handler on the root logger, redacted, with request ids.

    Everything propagates to the root handler, so library loggers (firebase_admin, psycopg, httpx)
    are formatted and redacted too, instead of reaching Python's bare last-resort handler. uvicorn's
    access lines are formatted from their message (not uvicorn's AccessFormatter, which needs the
    raw arguments the redacting filter has already merged into the message).
    """
    formatter = (
        "voicedesk.logging_setup.JsonFormatter" if json_logs else "voicedesk.logging_setup.ReadableFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "voicedesk.logging_setup.RequestIdFilter"},
            "redact": {"()": "voicedesk.redaction.RedactingFilter"},
        },
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "default",
                "filters": ["redact", "request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "token_server", "voicedesk", "db")
        },
    }
