"""`POST /calls`: an operator has the agent phone a customer.

Real processes throughout: the token server, the Auth emulator, Postgres and the LiveKit server.
No agent worker is started here, so a call stays ``pending`` unless a worker another test started
in this session picks up the dispatch (checked through the dispatch's jobs). Every room a test
creates is deleted afterwards, so the shared LiveKit server stays clean.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from livekit import api
from psycopg.rows import dict_row
from pydantic.alias_generators import to_camel

from tests.integration.conftest import SignedInOperator
from tests.support.firebase_emulator import FirebaseAuthEmulator
from tests.support.livekit_server import LiveKitServer
from tests.support.token_server import TokenServer

PURPOSE = "your renewal next week"


def fresh_number() -> str:
    """A number no other test dials, so rows can be found (or shown absent) by it."""
    return f"+1555{random.randrange(10**7):07d}"


def post(server: TokenServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/calls", json=body, headers=headers or {}, timeout=30)


async def apost(server: TokenServer, body: Any, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.post("/calls", json=body, headers=headers)


def rows_for(database_url: str, number: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return conn.execute("select * from calls where to_number = %s", (number,)).fetchall()


@pytest.fixture
async def lk(livekit_server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret)
    yield client
    await client.aclose()


@pytest.fixture
async def created_rooms(lk: api.LiveKitAPI) -> AsyncIterator[list[str]]:
    """Names of rooms a test made through the API: deleted when it ends, pass or fail."""
    rooms: list[str] = []
    yield rooms
    for room in rooms:
        try:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        except api.TwirpError:
            pass  # already gone
    if rooms:
        names = {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest(names=rooms))).rooms}
        assert not names, f"rooms left behind: {names}"


@pytest.fixture(scope="module")
def non_operator(firebase_emulator: FirebaseAuthEmulator) -> dict[str, str]:
    user = firebase_emulator.sign_up()
    # A claim that is merely truthy is not the operator role.
    firebase_emulator.set_custom_claims(user.uid, {"operator": "yes"})
    return {"Authorization": f"Bearer {firebase_emulator.sign_in(user.email, user.password)}"}


# --- who may ------------------------------------------------------------------------------------------


def test_no_token_is_401_and_nothing_is_dialled(live_token_server: TokenServer, database_url: str) -> None:
    number = fresh_number()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = post(live_token_server, {"phone_number": number, "purpose": PURPOSE}, headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"] == "Bearer"
    assert rows_for(database_url, number) == []


def test_a_non_operator_is_403_and_nothing_is_dialled(
    live_token_server: TokenServer, non_operator: dict[str, str], database_url: str
) -> None:
    number = fresh_number()
    resp = post(live_token_server, {"phone_number": number, "purpose": PURPOSE}, non_operator)
    assert resp.status_code == 403, resp.text
    assert "operator" in resp.json()["detail"]
    assert rows_for(database_url, number) == []


# --- what the request must say ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"phone_number": "5550100123", "purpose": PURPOSE}, "phone_number", "string_pattern_mismatch"),
        ({"phone_number": "+1 555 010 0123", "purpose": PURPOSE}, "phone_number", "string_pattern_mismatch"),
        ({"phone_number": "+0555010012", "purpose": PURPOSE}, "phone_number", "string_pattern_mismatch"),
        ({"phone_number": 15550100123, "purpose": PURPOSE}, "phone_number", "string_type"),
        ({"purpose": PURPOSE}, "phone_number", "missing"),
        ({"phone_number": "NUMBER"}, "purpose", "missing"),
        ({"phone_number": "NUMBER", "purpose": ""}, "purpose", "string_too_short"),
        ({"phone_number": "NUMBER", "purpose": "x" * 501}, "purpose", "string_too_long"),
        (
            {"phone_number": "NUMBER", "purpose": PURPOSE, "caller_id": "+15550000000"},
            "caller_id",
            "extra_forbidden",
        ),
    ],
    ids=[
        "national-number",
        "spaces",
        "leading-zero",
        "not-a-string",
        "no-number",
        "no-purpose",
        "empty-purpose",
        "purpose-501-chars",
        "unknown-field",
    ],
)
def test_a_bad_body_is_422_naming_the_field(
    live_token_server: TokenServer,
    operator: SignedInOperator,
    database_url: str,
    body: dict[str, Any],
    field: str,
    error: str,
) -> None:
    number = fresh_number()
    body = {k: number if v == "NUMBER" else v for k, v in body.items()}
    resp = post(live_token_server, body, operator.headers)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["detail"]
    # Either spelling the API accepts names the field (a missing one is reported as camelCase).
    names = {field, to_camel(field)}
    assert any(err["loc"][-1] in names and err["type"] == error for err in errors), errors
    if error == "extra_forbidden":
        assert any(err["msg"] == f"unknown field {field}" for err in errors), errors
    assert rows_for(database_url, number) == []


def test_a_body_that_is_not_json_is_422(live_token_server: TokenServer, operator: SignedInOperator) -> None:
    resp = httpx.post(
        f"{live_token_server.url}/calls",
        content=b"phone_number=+15550100123",
        headers={**operator.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 422, resp.text


# --- placing the call ---------------------------------------------------------------------------------


async def test_an_operator_places_a_call(
    live_token_server: TokenServer,
    operator: SignedInOperator,
    database_url: str,
    lk: api.LiveKitAPI,
    created_rooms: list[str],
) -> None:
    number = fresh_number()
    resp = await apost(live_token_server, {"phone_number": number, "purpose": PURPOSE}, operator.headers)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    created_rooms.append(body["room_name"])
    call_id = uuid.UUID(body["call_id"])
    assert body["status"] == "pending"
    assert resp.headers["location"] == f"/calls/{call_id}"

    # The call's record: written before anything is dialled.
    (row,) = rows_for(database_url, number)
    assert row["id"] == call_id
    assert row["channel"] == "pstn_outbound" and row["direction"] == "outbound"
    assert row["room_name"] == body["room_name"]
    assert row["to_number"] == number
    assert row["started_by"] == operator.user.uid
    assert row["metadata"]["purpose"] == PURPOSE

    # Its room exists, with the agent dispatched into it and told whom to call and why.
    rooms = (await lk.room.list_rooms(api.ListRoomsRequest(names=[body["room_name"]]))).rooms
    assert [r.name for r in rooms] == [body["room_name"]]
    dispatches = await lk.agent_dispatch.list_dispatch(room_name=body["room_name"])
    assert [d.agent_name for d in dispatches] == ["voicedesk"]
    assert json.loads(dispatches[0].metadata) == {
        "channel": "pstn_outbound",
        "call_id": str(call_id),
        "phone_number": number,
        "purpose": PURPOSE,
    }
    if not dispatches[0].state.jobs:
        # No worker has taken the job (none is started for this test): nobody has touched the row.
        assert row["status"] == "pending" and row["ended_at"] is None

    # The Location header leads to the call in the operator API.
    async with httpx.AsyncClient(base_url=live_token_server.url, timeout=15) as http:
        detail = await http.get(resp.headers["location"], headers=operator.headers)
    assert detail.status_code == 200, detail.text
    call = detail.json()
    assert call["id"] == str(call_id)
    assert call["channel"] == "pstn_outbound" and call["direction"] == "outbound"
    assert call["room_name"] == body["room_name"]
    assert call["started_by"] == operator.user.uid
    assert call["metadata"]["purpose"] == PURPOSE


async def test_camel_case_phone_number_is_accepted(
    live_token_server: TokenServer,
    operator: SignedInOperator,
    database_url: str,
    lk: api.LiveKitAPI,
    created_rooms: list[str],
) -> None:
    number = fresh_number()
    resp = await apost(live_token_server, {"phoneNumber": number, "purpose": PURPOSE}, operator.headers)
    assert resp.status_code == 202, resp.text
    created_rooms.append(resp.json()["room_name"])
    (row,) = rows_for(database_url, number)
    assert str(row["id"]) == resp.json()["call_id"]
    dispatches = await lk.agent_dispatch.list_dispatch(room_name=resp.json()["room_name"])
    assert json.loads(dispatches[0].metadata)["phone_number"] == number


def test_each_request_is_a_new_call_in_its_own_room(
    live_token_server: TokenServer, operator: SignedInOperator, database_url: str, created_rooms: list[str]
) -> None:
    number = fresh_number()
    first = post(live_token_server, {"phone_number": number, "purpose": PURPOSE}, operator.headers)
    second = post(live_token_server, {"phone_number": number, "purpose": PURPOSE}, operator.headers)
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    created_rooms.extend([first.json()["room_name"], second.json()["room_name"]])
    assert first.json()["call_id"] != second.json()["call_id"]
    assert first.json()["room_name"] != second.json()["room_name"]
    assert len(rows_for(database_url, number)) == 2


def test_a_purpose_of_exactly_500_characters_is_accepted(
    live_token_server: TokenServer, operator: SignedInOperator, database_url: str, created_rooms: list[str]
) -> None:
    number = fresh_number()
    purpose = "é" * 500  # characters, not bytes
    resp = post(live_token_server, {"phone_number": number, "purpose": purpose}, operator.headers)
    assert resp.status_code == 202, resp.text
    created_rooms.append(resp.json()["room_name"])
    (row,) = rows_for(database_url, number)
    assert row["metadata"]["purpose"] == purpose


# --- when LiveKit is down -----------------------------------------------------------------------------


def test_livekit_unreachable_is_503_and_the_call_is_recorded_as_failed(
    token_server: TokenServer, operator: SignedInOperator, database_url: str
) -> None:
    """``token_server`` is configured with a LiveKit URL on a closed port."""
    number = fresh_number()
    resp = post(token_server, {"phone_number": number, "purpose": PURPOSE}, operator.headers)
    assert resp.status_code == 503, resp.text
    assert "LiveKit" in resp.json()["detail"]
    assert "location" not in resp.headers

    (row,) = rows_for(database_url, number)
    assert row["status"] == "failed"
    assert row["end_reason"] == "dispatch_failed"
    assert row["ended_at"] is not None
    assert row["started_by"] == operator.user.uid

    detail = httpx.get(f"{token_server.url}/calls/{row['id']}", headers=operator.headers, timeout=15)
    assert detail.status_code == 200, detail.text
    assert detail.json()["status"] == "failed"
    assert detail.json()["end_reason"] == "dispatch_failed"
