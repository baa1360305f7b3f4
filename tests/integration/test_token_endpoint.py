"""POST /token against real processes: the token server, the Auth emulator and Postgres.

Minted tokens are checked with livekit-api's own TokenVerifier, the way LiveKit server reads them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from livekit import api

from tests.support.firebase_emulator import (
    FirebaseAuthEmulator,
    SigningAuthority,
    firebase_claims,
    forged_key,
    tampered,
    unsigned_token,
)
from tests.support.token_server import ALLOWED_ORIGIN, TOKEN_TTL_SECONDS, TokenServer


def post_token(
    server: TokenServer, id_token: str | None, body: Any = None, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    hdrs = dict(headers or {})
    if id_token is not None:
        hdrs["Authorization"] = f"Bearer {id_token}"
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    return httpx.post(f"{server.url}/token", headers=hdrs, timeout=15, **kwargs)


def verify(server: TokenServer, participant_token: str) -> api.Claims:
    env = server.env
    return api.TokenVerifier(env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]).verify(participant_token)


def dispatch_metadata(claims: api.Claims) -> dict[str, Any]:
    assert claims.room_config is not None
    assert len(claims.room_config.agents) == 1
    return json.loads(claims.room_config.agents[0].metadata)


def profile_row(database_url: str, uid: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "select id, email, display_name, phone_e164 from profiles where firebase_uid = %s", (uid,)
        ).fetchone()


# --- success --------------------------------------------------------------------------------------


def test_signed_up_user_gets_a_token_for_a_fresh_room_with_the_agent(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, database_url: str
) -> None:
    user = firebase_emulator.sign_up(display_name="Ada Lovelace")

    resp = post_token(token_server, user.id_token, {})

    assert resp.status_code == 201, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert set(body) == {"server_url", "participant_token"}
    assert body["server_url"] == token_server.env["LIVEKIT_URL"]

    claims = verify(token_server, body["participant_token"])
    assert claims.identity == user.uid
    assert claims.name == "Ada Lovelace"
    video = claims.video
    assert video is not None
    assert video.room_join is True
    assert video.room.startswith("call-")
    assert (video.can_publish, video.can_subscribe, video.can_publish_data) == (True, True, True)
    for admin_grant in (video.room_admin, video.room_create, video.room_list, video.room_record):
        assert not admin_grant
    assert not video.can_update_own_metadata

    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == "voicedesk"
    metadata = dispatch_metadata(claims)
    assert metadata["channel"] == "web"
    assert metadata["firebase_uid"] == user.uid
    call_id = uuid.UUID(metadata["call_id"])
    assert call_id.version == 4
    assert video.room == f"call-{call_id}"

    row = profile_row(database_url, user.uid)
    assert row is not None, "the first token creates the profile"
    assert str(row["id"]) == metadata["profile_id"]
    assert row["email"] == user.email
    assert row["display_name"] == "Ada Lovelace"

    raw = jwt.decode(body["participant_token"], options={"verify_signature": False})
    assert abs((raw["exp"] - raw["nbf"]) - TOKEN_TTL_SECONDS) <= 2
    assert abs(raw["nbf"] - time.time()) <= 30


def test_every_call_gets_its_own_room_and_call_id_but_one_profile(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    user = firebase_emulator.sign_up()
    first = verify(token_server, post_token(token_server, user.id_token, {}).json()["participant_token"])
    second = verify(token_server, post_token(token_server, user.id_token).json()["participant_token"])

    assert first.video is not None and second.video is not None
    assert first.video.room != second.video.room
    assert dispatch_metadata(first)["call_id"] != dispatch_metadata(second)["call_id"]
    assert dispatch_metadata(first)["profile_id"] == dispatch_metadata(second)["profile_id"]


def test_camel_case_body_is_accepted(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    user = firebase_emulator.sign_up()
    body = {
        "participantName": "Grace",
        "participantIdentity": user.uid,  # allowed when it is the caller's own uid
        "participantMetadata": '{"ui": "web"}',
        "participantAttributes": {"plan": "pro"},
        "roomConfig": {"agents": [{"agentName": "voicedesk-sales"}]},
    }
    resp = post_token(token_server, user.id_token, body)

    assert resp.status_code == 201, resp.text
    claims = verify(token_server, resp.json()["participant_token"])
    assert claims.identity == user.uid
    assert claims.name == "Grace"
    assert claims.metadata == '{"ui": "web"}'
    assert claims.attributes == {"plan": "pro"}
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == "voicedesk-sales"


def test_livekit_js_sdk_request_shape_is_accepted(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    """What TokenSource.endpoint sends: TokenSourceRequest.toJsonString({useProtoFieldName: true})."""
    user = firebase_emulator.sign_up()
    body = {"participant_name": "Web caller", "room_config": {"agents": [{"agent_name": "voicedesk"}]}}
    resp = post_token(token_server, user.id_token, body)

    assert resp.status_code == 201, resp.text
    assert verify(token_server, resp.json()["participant_token"]).name == "Web caller"


def test_profile_takes_phone_number_and_custom_claims_do_not_get_in_the_way(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, database_url: str
) -> None:
    user = firebase_emulator.sign_up()
    firebase_emulator.update_profile(user.uid, phone="+14155550123")
    firebase_emulator.set_custom_claims(user.uid, {"role": "operator", "tier": "pro"})
    id_token = firebase_emulator.sign_in(user.email, user.password)

    resp = post_token(token_server, id_token, {})

    assert resp.status_code == 201, resp.text
    row = profile_row(database_url, user.uid)
    assert row is not None
    assert row["phone_e164"] == "+14155550123"


# --- authentication refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "missing header",
        "basic scheme",
        "empty bearer",
        "garbage",
        "three garbage parts",
        "wrong audience",
        "wrong issuer",
        "expired",
        "no subject",
        "custom token audience",
        "exp not a number",
        "payload not json",
        "oversized",
    ],
)
def test_bad_credentials_get_401(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, case: str
) -> None:
    user = firebase_emulator.sign_up()
    good = user.id_token
    headers: dict[str, str] = {}
    id_token: str | None
    match case:
        case "missing header":
            id_token = None
        case "basic scheme":
            id_token, headers = None, {"Authorization": "Basic dXNlcjpwYXNz"}
        case "empty bearer":
            id_token, headers = None, {"Authorization": "Bearer"}
        case "garbage":
            id_token = "not-a-token"
        case "three garbage parts":
            id_token = "a.b.c"
        case "wrong audience":
            id_token = tampered(good, aud="someone-elses-project")
        case "wrong issuer":
            id_token = tampered(good, iss="https://securetoken.google.com/someone-elses-project")
        case "expired":
            id_token = tampered(good, exp=int(time.time()) - 10)
        case "no subject":
            claims = firebase_claims(user.uid)
            del claims["sub"]
            id_token = unsigned_token(claims)
        case "custom token audience":
            id_token = tampered(
                good,
                aud="https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit",
            )
        case "exp not a number":
            id_token = tampered(good, exp="tomorrow")
        case "payload not json":
            header, _, _ = good.split(".")
            id_token = f"{header}.bm90IGpzb24.sig"
        case "oversized":
            id_token = tampered(good, padding="x" * 20_000)
        case _:
            raise AssertionError(case)

    resp = post_token(token_server, id_token, {}, headers=headers)

    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "detail" in resp.json()


def test_correctly_signed_token_is_accepted_in_strict_mode(
    strict_token_server: TokenServer, signing_authority: SigningAuthority, database_url: str
) -> None:
    uid = f"strict-{uuid.uuid4().hex[:12]}"
    id_token = signing_authority.sign(
        firebase_claims(uid, email=f"{uid}@example.com", email_verified=True, name="Strict User")
    )

    resp = post_token(strict_token_server, id_token, {})

    assert resp.status_code == 201, resp.text
    assert verify(strict_token_server, resp.json()["participant_token"]).identity == uid
    row = profile_row(database_url, uid)
    assert row is not None and row["email"] == f"{uid}@example.com"


@pytest.mark.parametrize("email_verified", [False, None, "true"], ids=["false", "missing", "string"])
def test_unverified_email_is_refused_when_verification_is_required(
    strict_token_server: TokenServer,
    signing_authority: SigningAuthority,
    database_url: str,
    email_verified: Any,
) -> None:
    uid = f"strict-{uuid.uuid4().hex[:12]}"
    extra = {"email_verified": email_verified} if email_verified is not None else {}
    id_token = signing_authority.sign(firebase_claims(uid, email=f"{uid}@example.com", **extra))

    resp = post_token(strict_token_server, id_token, {})

    assert resp.status_code == 403, resp.text
    assert "verify your email address" in resp.json()["detail"]
    assert profile_row(database_url, uid) is None  # a refused request stores nothing


@pytest.mark.parametrize(
    "case",
    [
        "forged signature",
        "expired",
        "unsigned (emulator style)",
        "unknown kid",
        "wrong audience",
        "wrong issuer",
    ],
)
def test_strict_mode_refuses_bad_tokens(
    strict_token_server: TokenServer, signing_authority: SigningAuthority, case: str
) -> None:
    uid = f"strict-{uuid.uuid4().hex[:12]}"
    claims = firebase_claims(uid)
    match case:
        case "forged signature":
            id_token = signing_authority.sign(claims, key=forged_key())
        case "expired":
            past = int(time.time()) - 7200
            id_token = signing_authority.sign({**claims, "iat": past, "auth_time": past, "exp": past + 3600})
        case "unsigned (emulator style)":
            id_token = unsigned_token(claims)
        case "unknown kid":
            id_token = signing_authority.sign(claims, kid="0" * 40)
        case "wrong audience":
            id_token = signing_authority.sign(
                firebase_claims(uid, "another-project") | {"iss": claims["iss"]}
            )
        case "wrong issuer":
            id_token = signing_authority.sign(claims | {"iss": "https://accounts.google.com"})
        case _:
            raise AssertionError(case)

    resp = post_token(strict_token_server, id_token, {})

    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"


def test_certificates_unavailable_gives_503_not_401(
    strict_token_server: TokenServer, signing_authority: SigningAuthority
) -> None:
    id_token = signing_authority.sign(firebase_claims(f"strict-{uuid.uuid4().hex[:12]}", email_verified=True))
    signing_authority.available = False
    try:
        resp = post_token(strict_token_server, id_token, {})
    finally:
        signing_authority.available = True

    assert resp.status_code == 503, resp.text
    assert post_token(strict_token_server, id_token, {}).status_code == 201


# --- request refusals -----------------------------------------------------------------------------


def _detail_text(resp: httpx.Response) -> str:
    detail = resp.json()["detail"]
    return " ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"participant_identity": "someone-else"}, "participant_identity"),
        ({"participantIdentity": "someone-else"}, "participant_identity"),
        ({"room_name": "call-existing"}, "room_name"),
        ({"roomName": "someone-elses-room"}, "room_name"),
        ({"room_config": {"agents": [{"agent_name": "admin-bot"}]}}, "agent_name"),
        (
            {"room_config": {"agents": [{"agent_name": "voicedesk", "metadata": '{"profile_id": "x"}'}]}},
            "metadata",
        ),
        ({"room_config": {"agents": [{"agentName": "voicedesk", "deployment": "canary"}]}}, "deployment"),
        ({"room_config": {"name": "my-room"}}, "room_config.name"),
        ({"room_config": {"max_participants": 50}}, "room_config.max_participants"),
        (
            {"room_config": {"agents": [{"agent_name": "voicedesk"}, {"agent_name": "voicedesk-sales"}]}},
            "room_config.agents",
        ),
        ({"can_publish": True}, "can_publish"),
        ({"participant_attributes": {"lk.agent.state": "speaking"}}, "participant_attributes"),
        ({"participant_name": "x" * 500}, "participant_name"),
        ({"participant_metadata": "x" * 10_000}, "participant_metadata"),
        ([1, 2, 3], "body"),
    ],
)
def test_refused_fields_get_422_naming_the_field(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, body: Any, field: str
) -> None:
    user = firebase_emulator.sign_up()
    resp = post_token(token_server, user.id_token, body)

    assert resp.status_code == 422, resp.text
    assert field in _detail_text(resp)


def test_malformed_json_gets_422_not_500(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    user = firebase_emulator.sign_up()
    for raw in (b'{"room_name": ', b"\xff\xfe", b'{"participant_name": "a",}', b"[[[[[[["):
        resp = httpx.post(
            f"{token_server.url}/token",
            content=raw,
            headers={"Authorization": f"Bearer {user.id_token}", "Content-Type": "application/json"},
            timeout=15,
        )
        assert resp.status_code == 422, (raw, resp.status_code, resp.text)
        assert "body" in _detail_text(resp)


def test_no_body_or_empty_object_is_fine(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    user = firebase_emulator.sign_up()
    auth = {"Authorization": f"Bearer {user.id_token}"}
    assert httpx.post(f"{token_server.url}/token", headers=auth, timeout=15).status_code == 201
    resp = httpx.post(
        f"{token_server.url}/token",
        headers={**auth, "Content-Type": "application/json"},
        content=b"{}",
        timeout=15,
    )
    assert resp.status_code == 201, resp.text


# --- CORS and health ------------------------------------------------------------------------------


def _preflight(server: TokenServer, origin: str) -> httpx.Response:
    return httpx.options(
        f"{server.url}/token",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=15,
    )


def test_cors_preflight_from_allowed_origin_is_allowed(token_server: TokenServer) -> None:
    resp = _preflight(token_server, ALLOWED_ORIGIN)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in resp.headers["access-control-allow-headers"].lower()


def test_cors_preflight_from_other_origin_is_refused(token_server: TokenServer) -> None:
    resp = _preflight(token_server, "https://evil.example.com")
    assert resp.status_code == 400
    assert "access-control-allow-origin" not in resp.headers


def test_healthz(token_server: TokenServer) -> None:
    resp = httpx.get(f"{token_server.url}/healthz", timeout=5)
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_readyz_names_unreachable_livekit(strict_token_server: TokenServer) -> None:
    resp = httpx.get(f"{strict_token_server.url}/readyz", timeout=15)
    assert resp.status_code == 503
    body = resp.json()
    assert body["database"] == "ok"
    assert body["livekit"].startswith("error: ")


def test_readyz_ok_with_real_livekit(live_token_server: TokenServer) -> None:
    resp = httpx.get(f"{live_token_server.url}/readyz", timeout=15)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"database": "ok", "livekit": "ok"}


# --- Flutter (livekit_client) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "body"),
    [
        # TokenRequestOptions() with no agent: the SDK still sends an empty room_config.
        ("default options", {"room_config": {}}),
        # Session.withAgent('voicedesk', ...) or TokenRequestOptions(agentName:, participantName:).
        (
            "agent and name",
            {"participant_name": "Flutter caller", "room_config": {"agents": [{"agent_name": "voicedesk"}]}},
        ),
        # The first token-source release (2.5.4) left room_config out when no agent was named.
        ("2.5.4 default options", {}),
    ],
)
def test_livekit_flutter_sdk_request_shape_is_accepted(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, case: str, body: dict[str, Any]
) -> None:
    """Exactly what livekit_client's EndpointTokenSource sends, with the app's Authorization header.

    Source: github.com/livekit/client-sdk-flutter, lib/src/token_source/endpoint.dart (fetch: POST,
    headers {'Content-Type': 'application/json', ...headers}, body
    jsonEncode(options.toRequest().toJson())), token_source.dart + token_source.g.dart
    (TokenSourceRequest: snake_case keys room_name, participant_name, participant_identity,
    participant_metadata, participant_attributes, room_config; nulls left out; toRequest() always
    sets room_config = RoomConfiguration(agents: ...)), room_configuration.g.dart (agents[].agent_name,
    agents[].metadata). package:http's Request adds '; charset=utf-8' to a Content-Type without one.
    The response is read by TokenSourceResponse.fromJson: server_url and participant_token (camelCase
    accepted too); endpoint.dart accepts any 2xx in current releases (the 2.5.4 one wanted 200).
    """
    user = firebase_emulator.sign_up(display_name="Flutter User")
    raw = json.dumps(body, separators=(",", ":")).encode()  # Dart's jsonEncode: no spaces
    resp = httpx.post(
        f"{token_server.url}/token",
        content=raw,
        headers={
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {user.id_token}",  # EndpointTokenSource(headers: {...})
            "user-agent": "Dart/3.10 (dart:io)",
        },
        timeout=15,
    )

    assert resp.status_code == 201, (case, resp.text)
    assert 200 <= resp.status_code < 300  # what endpoint.dart checks before parsing
    data = resp.json()
    assert isinstance(data["server_url"], str) and isinstance(data["participant_token"], str)
    assert data["server_url"] == token_server.env["LIVEKIT_URL"]  # the Flutter app's Room.connect URL

    claims = verify(token_server, data["participant_token"])
    assert claims.identity == user.uid
    assert claims.name == body.get("participant_name", "Flutter User")
    assert claims.video is not None and claims.video.room.startswith("call-")
    assert claims.video.room_join and claims.video.can_publish and claims.video.can_subscribe
    assert claims.room_config is not None
    assert claims.room_config.agents[0].agent_name == "voicedesk"
    assert dispatch_metadata(claims)["channel"] == "web"


async def test_the_agent_is_dispatched_as_the_token_is_minted(
    live_token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator, livekit_server
) -> None:
    """EARLY_DISPATCH (default): the room and its agent exist before anyone joins with the token,
    with the same dispatch metadata as the token's own room configuration."""
    user = firebase_emulator.sign_up(display_name="Early Caller")
    resp = post_token(live_token_server, user.id_token)
    assert resp.status_code == 201, resp.text
    claims = verify(live_token_server, resp.json()["participant_token"])
    room = claims.video.room
    async with api.LiveKitAPI(
        livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
    ) as lk:
        try:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
            assert [r.name for r in rooms.rooms] == [room]
            dispatches = await lk.agent_dispatch.list_dispatch(room_name=room)
            assert [(d.agent_name, json.loads(d.metadata)) for d in dispatches] == [
                ("voicedesk", dispatch_metadata(claims))
            ]
        finally:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
