"""Log output: JSON lines that carry the call's fields, with personal data redacted.

The worker test runs LiveKit's own job-to-worker log path: a job process (spawned) logs through
LiveKit's LogQueueHandler and job-context filter, the worker side receives the pickled records
with LiveKit's LogQueueListener and writes them with LiveKit's production JsonFormatter.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import multiprocessing
import socket
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from voicedesk.logging_setup import (
    CallIdFromRoomFilter,
    JsonFormatter,
    ReadableFormatter,
    RequestIdMiddleware,
    install_call_id_from_room,
    install_redaction,
    token_server_log_config,
)
from voicedesk.redaction import RedactingFilter

CALL_ID = "5f0c6a9e-1b2d-4c3e-9f10-426614174000"
ROOM = f"call-{CALL_ID}"


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Put the root logger and the loggers these tests touch back as they were."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    names = [
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "token_server",
        "voicedesk",
        "db",
        "livekit",
        "httpx",
    ]
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the worker: job process -> worker process, as LiveKit forwards records ------------------------


def _job_process(sock: socket.socket) -> None:
    """What a job process logs during a call (runs in a spawned process)."""
    from livekit.agents.ipc.log_queue import LogQueueHandler
    from livekit.agents.job import JobExecutorType, _ContextLogFieldsFilter
    from livekit.agents.utils.aio import duplex_unix

    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    handler = LogQueueHandler(duplex_unix._Duplex.open(sock))
    root.addHandler(handler)
    install_redaction()  # prewarm
    # the job starts: LiveKit adds its context filter; the entrypoint sets room and call_id
    job_ctx = SimpleNamespace(
        proc=SimpleNamespace(executor_type=JobExecutorType.PROCESS),
        _log_fields={"room": ROOM, "call_id": CALL_ID},
    )
    handler.addFilter(_ContextLogFieldsFilter(job_ctx))  # type: ignore[arg-type]

    logging.getLogger("voicedesk.agent").info("caller said %r", "my card is 4111 1111 1111 1111")
    logging.getLogger("livekit.agents").debug(
        "conversation_item_added", extra={"lk.pii.text": "call me on +44 20 7946 0958", "role": "user"}
    )
    logging.getLogger("httpx").warning("HTTP Request: GET https://crm.example.com/find?email=ann@example.com")
    try:
        raise LookupError("no profile for 415-555-0100")
    except LookupError:
        logging.getLogger("voicedesk.agent.caller").exception("lookup failed")
    handler.close()
    handler.thread.join(10)


def test_every_job_line_is_json_with_room_and_call_id_and_redacted(clean_logging: None) -> None:
    from livekit.agents.cli.log import JsonFormatter as LiveKitJsonFormatter
    from livekit.agents.ipc.log_queue import LogQueueListener
    from livekit.agents.utils.aio import duplex_unix

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(LiveKitJsonFormatter())  # what `python -m agent start` uses
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    for name in ("livekit", "httpx"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    install_redaction()  # worker_started
    install_call_id_from_room()
    install_redaction()  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1

    parent_sock, child_sock = socket.socketpair()
    listener = LogQueueListener(duplex_unix._Duplex.open(parent_sock), lambda record: None)
    listener.start()
    proc = multiprocessing.get_context("spawn").Process(target=_job_process, args=(child_sock,))
    proc.start()
    proc.join(60)
    child_sock.close()
    listener.stop()
    assert proc.exitcode == 0

    lines = _lines(out.getvalue())
    assert [line["name"] for line in lines] == [
        "voicedesk.agent",
        "livekit.agents",
        "httpx",
        "voicedesk.agent.caller",
    ]
    for line in lines:
        assert line["room"] == ROOM
        assert line["call_id"] == CALL_ID
    text = out.getvalue()
    for secret in ("4111", "7946", "ann@example.com", "555-0100"):
        assert secret not in text
    assert lines[0]["message"] == "caller said 'my card is [card]'"
    assert lines[1]["lk.pii.text"] == "call me on [phone]"
    assert lines[2]["message"].endswith("email=[email]")
    assert "LookupError: no profile for [phone]" in lines[3]["exc_info"]


def test_worker_lines_about_a_call_get_its_call_id(clean_logging: None) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CallIdFromRoomFilter())
    log = logging.getLogger("test.worker")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("received job request", extra={"room": ROOM, "job_id": "AJ_x"})
        log.info("received job request", extra={"room": "sip-+14155550100"})
        log.info("explicit", extra={"room": ROOM, "call_id": "other"})
    finally:
        log.removeHandler(handler)
    lines = _lines(out.getvalue())
    assert lines[0]["call_id"] == CALL_ID
    assert "call_id" not in lines[1]
    assert lines[2]["call_id"] == "other"


# --- the token server ----------------------------------------------------------------------------


def test_token_server_production_logs_are_redacted_json_lines(
    clean_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(token_server_log_config(json_logs=True))
    logging.getLogger("token_server.routes.token").info(
        "profile created for %s", "ann@example.com", extra={"uid": "Ud36WjmaBYzmlTmVH7CBHMWUMQx6"}
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:51000", "GET", "/calls?phone=+14155550100", "1.1", 200
    )
    logging.getLogger("firebase_admin").warning("token for QQ 12 34 56 C rejected")  # a library logger
    logging.getLogger("firebase_admin").info("not shown: libraries log WARNING and above")
    lines = _lines(capsys.readouterr().out)
    assert [line["logger"] for line in lines] == [
        "token_server.routes.token",
        "uvicorn.access",
        "firebase_admin",
    ]
    assert lines[0]["message"] == "profile created for [email]"
    assert lines[0]["uid"] == "Ud36WjmaBYzmlTmVH7CBHMWUMQx6"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["timestamp"].endswith("+00:00")
    assert lines[1]["message"] == '127.0.0.1:51000 - "GET /calls?phone=[phone] HTTP/1.1" 200'
    assert lines[2]["message"] == "token for [national-id] rejected"


async def test_request_id_is_on_every_line_of_a_request_and_in_the_response(
    clean_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(token_server_log_config(json_logs=True))
    log = logging.getLogger("token_server.app")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        log.info("handling %s", scope["path"])
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    middleware = RequestIdMiddleware(app)
    await middleware({"type": "http", "path": "/token", "headers": []}, receive, send)
    given = {"type": "http", "path": "/token", "headers": [(b"x-request-id", b"edge-abc.123")]}
    await middleware(given, receive, send)
    bad = {"type": "http", "path": "/token", "headers": [(b"x-request-id", b"<script>" * 20)]}
    await middleware(bad, receive, send)
    log.info("outside any request")

    lines = _lines(capsys.readouterr().out)
    ids = [line.get("request_id") for line in lines]
    assert ids[1] == "edge-abc.123"
    assert len(ids[0]) == 32 and uuid.UUID(ids[0])
    assert len(ids[2]) == 32 and ids[2] != ids[0]
    assert ids[3] is None
    echoed = [
        dict(m["headers"])[b"x-request-id"].decode() for m in sent if m["type"] == "http.response.start"
    ]
    assert echoed == ids[:3]


def test_token_server_dev_logs_are_readable(clean_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(token_server_log_config(json_logs=False))
    logging.getLogger("token_server.app").info("ready for %s", "ann@example.com", extra={"port": 8000})
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith('INFO    token_server.app: ready for [email] {"port": 8000}')
    assert isinstance(token_server_log_config(json_logs=False)["formatters"]["default"]["()"], str)
    assert ReadableFormatter().format(logging.makeLogRecord({"msg": "x", "levelname": "INFO"})).endswith("x")
