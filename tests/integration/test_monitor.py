"""`POST /calls/{call_id}/monitor`: an operator gets a hidden, listen-only token for a live call.

Real token server, Auth emulator and Postgres; call rows are inserted with SQL as the agent writes
them. Tokens are read with livekit-api's TokenVerifier, the way the LiveKit server reads them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from livekit import api

from tests.integration.conftest import CallRows, SignedInOperator
from tests.support.firebase_emulator import FirebaseAuthEmulator
from tests.support.token_server import TOKEN_TTL_SECONDS, TokenServer


def monitor(server: TokenServer, call_id: uuid.UUID | str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}/calls/{call_id}/monitor", headers=headers, timeout=15)


def verify(server: TokenServer, token: str) -> api.Claims:
    return api.TokenVerifier(server.env["LIVEKIT_API_KEY"], server.env["LIVEKIT_API_SECRET"]).verify(token)


def room_of(call_rows: CallRows, call_id: uuid.UUID) -> str:
    row = call_rows.conn.execute("select room_name from calls where id = %s", (call_id,)).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def non_operator(firebase_emulator: FirebaseAuthEmulator) -> dict[str, str]:
    user = firebase_emulator.sign_up()
    firebase_emulator.set_custom_claims(user.uid, {"operator": "yes"})  # truthy is not the role
    return {"Authorization": f"Bearer {firebase_emulator.sign_in(user.email, user.password)}"}


# --- who may ------------------------------------------------------------------------------------------


def test_no_token_is_401(operator_server: TokenServer, call_rows: CallRows) -> None:
    live = call_rows.call(started_at=datetime.now(UTC), status="in_progress")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = monitor(operator_server, live, headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"] == "Bearer"


def test_a_non_operator_is_403(
    operator_server: TokenServer, call_rows: CallRows, non_operator: dict[str, str]
) -> None:
    live = call_rows.call(started_at=datetime.now(UTC), status="in_progress")
    resp = monitor(operator_server, live, non_operator)
    assert resp.status_code == 403, resp.text
    assert "operator" in resp.json()["detail"]


# --- which calls ----------------------------------------------------------------------------------


def test_unknown_call_is_404(operator_server: TokenServer, operator: SignedInOperator) -> None:
    call_id = uuid.uuid4()
    resp = monitor(operator_server, call_id, operator.headers)
    assert resp.status_code == 404, resp.text
    assert str(call_id) in resp.json()["detail"]


def test_malformed_call_id_is_422_naming_it(operator_server: TokenServer, operator: SignedInOperator) -> None:
    resp = monitor(operator_server, "not-a-uuid", operator.headers)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["path", "call_id"]


@pytest.mark.parametrize("status", ["completed", "failed", "no_answer", "busy"])
def test_ended_call_is_409(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows, status: str
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    ended = call_rows.call(started_at=start, ended_at=start + timedelta(minutes=2), status=status)
    resp = monitor(operator_server, ended, operator.headers)
    assert resp.status_code == 409, resp.text
    assert "ended" in resp.json()["detail"]


def test_call_with_an_end_time_is_409_whatever_its_status(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    ended = call_rows.call(started_at=start, ended_at=start + timedelta(minutes=1), status="in_progress")
    assert monitor(operator_server, ended, operator.headers).status_code == 409


# --- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "status"),
    [
        ("web", "in_progress"),
        ("pstn_inbound", "in_progress"),
        ("pstn_outbound", "ringing"),
        ("pstn_outbound", "pending"),
    ],
)
def test_live_call_gets_a_hidden_listen_only_token(
    operator_server: TokenServer,
    operator: SignedInOperator,
    call_rows: CallRows,
    channel: str,
    status: str,
) -> None:
    live = call_rows.call(started_at=datetime.now(UTC), channel=channel, status=status)

    resp = monitor(operator_server, live, operator.headers)

    assert resp.status_code == 201, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"server_url", "participant_token"}
    assert body["server_url"] == operator_server.env["LIVEKIT_URL"]

    claims = verify(operator_server, body["participant_token"])
    assert claims.identity.startswith(f"operator-{operator.user.uid}")
    video = claims.video
    assert video is not None
    assert video.room == room_of(call_rows, live)
    assert video.room_join is True
    assert video.hidden is True
    assert video.can_subscribe is True
    assert video.can_publish is False
    assert video.can_publish_data is False
    for admin_grant in (video.room_admin, video.room_create, video.room_list, video.room_record):
        assert not admin_grant
    # No agent dispatch: the room already has its agent.
    assert claims.room_config is None or not claims.room_config.agents

    raw = jwt.decode(body["participant_token"], options={"verify_signature": False})
    assert abs((raw["exp"] - raw["nbf"]) - TOKEN_TTL_SECONDS) <= 2
    assert abs(raw["nbf"] - time.time()) <= 30


def test_two_tabs_get_two_identities(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    live = call_rows.call(started_at=datetime.now(UTC), status="in_progress")
    first = verify(
        operator_server, monitor(operator_server, live, operator.headers).json()["participant_token"]
    )
    second = verify(
        operator_server, monitor(operator_server, live, operator.headers).json()["participant_token"]
    )
    assert first.identity != second.identity
    assert first.video is not None and second.video is not None
    assert first.video.room == second.video.room


def test_monitoring_is_logged_without_the_token(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    live = call_rows.call(started_at=datetime.now(UTC), status="in_progress")
    token = monitor(operator_server, live, operator.headers).json()["participant_token"]

    deadline = time.monotonic() + 5
    log, lines = "", []
    while time.monotonic() < deadline:
        log = operator_server.service.log()
        lines = [line for line in log.splitlines() if f"monitors call {live}" in line]
        if lines:
            break
        time.sleep(0.1)
    assert lines, "the server logs who monitored which call"
    assert operator.user.uid in lines[-1]
    assert token not in log
    assert token.split(".")[2] not in log  # not even the signature
