"""`GET/PUT /me/settings` with the real token server, Auth emulator and Postgres."""

from __future__ import annotations

import secrets

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from voicedesk.pins import check_pin


@pytest.fixture
def user(firebase_emulator):
    """A signed-in user whose token carries a phone number, as after Firebase phone sign-in."""
    signed_up = firebase_emulator.sign_up(display_name="Sam Settings")
    phone = f"+1555{secrets.randbelow(10**7):07d}"  # unique: the emulator refuses a number twice
    firebase_emulator.update_profile(signed_up.uid, phone=phone)
    return signed_up, firebase_emulator.sign_in(signed_up.email, signed_up.password), phone


def _stored(database_url: str, uid: str) -> dict:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        row = conn.execute(
            "select p.phone_e164, s.* from profiles p left join user_settings s on s.profile_id = p.id"
            " where p.firebase_uid = %s",
            (uid,),
        ).fetchone()
    assert row is not None
    return row


def test_settings_need_a_signed_in_user(live_token_server) -> None:
    assert httpx.get(f"{live_token_server.url}/me/settings", timeout=10).status_code == 401
    assert httpx.put(f"{live_token_server.url}/me/settings", json={}, timeout=10).status_code == 401


def test_phone_pin_is_stored_hashed_and_never_returned(live_token_server, user, database_url) -> None:
    signed_up, token, phone = user
    headers = {"Authorization": f"Bearer {token}"}
    fresh = httpx.get(f"{live_token_server.url}/me/settings", headers=headers, timeout=10)
    assert fresh.status_code == 200 and fresh.json()["phone_pin_set"] is False

    resp = httpx.put(
        f"{live_token_server.url}/me/settings",
        json={"phonePin": "4821", "greeting": "Hello {name}, Acme here."},
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["phone_pin_set"] is True and body["greeting"] == "Hello {name}, Acme here."
    assert "4821" not in resp.text

    row = _stored(database_url, signed_up.uid)
    assert row["phone_e164"] == phone, "the app account carries the verified phone number"
    assert row["phone_pin_hash"].startswith("scrypt$") and "4821" not in row["phone_pin_hash"]
    assert check_pin("4821", row["phone_pin_hash"]) and not check_pin("4822", row["phone_pin_hash"])

    # Fields left out stay; null removes the PIN.
    resp = httpx.put(
        f"{live_token_server.url}/me/settings", json={"phone_pin": None}, headers=headers, timeout=10
    )
    assert resp.json()["phone_pin_set"] is False and resp.json()["greeting"] == "Hello {name}, Acme here."
    assert _stored(database_url, signed_up.uid)["phone_pin_hash"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone_pin": "12"}, "phone_pin"),
        ({"phone_pin": "12ab"}, "phone_pin"),
        ({"language": "english"}, "language"),
        ({"language": None}, "language"),
        ({"greeting": "x" * 301}, "greeting"),
        ({"voice_id": "../etc"}, "voice_id"),
        ({"uid": "someone-else"}, "uid"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(live_token_server, user, body, field) -> None:
    _, token, _ = user
    resp = httpx.put(
        f"{live_token_server.url}/me/settings",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 422
    locations = [err["loc"][-1] for err in resp.json()["detail"]]
    assert any(
        loc in (field, field.replace("_", "")) or loc.lower() == field.replace("_", "") for loc in locations
    ), locations


# --- voice ----------------------------------------------------------------------------------------


def test_voice_must_be_one_of_the_offered_voices(live_token_server, user, database_url) -> None:
    signed_up, token, _ = user
    headers = {"Authorization": f"Bearer {token}"}
    offered = httpx.get(f"{live_token_server.url}/config", timeout=10).json()["voices"]
    assert len(offered) >= 2

    # Well-formed, but not a voice this desk offers: refused naming voice_id and listing the choices.
    resp = httpx.put(
        f"{live_token_server.url}/me/settings",
        json={"voice_id": "NotOfferedVoice0001"},
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "voice_id"]
    for voice in offered:
        assert voice["id"] in error["msg"] and voice["name"] in error["msg"]
    fresh = httpx.get(f"{live_token_server.url}/me/settings", headers=headers, timeout=10).json()
    assert fresh["voice_id"] is None, "nothing was stored"

    # An offered voice is stored (camelCase too), and null goes back to the agent's default.
    chosen = offered[1]["id"]
    resp = httpx.put(
        f"{live_token_server.url}/me/settings", json={"voiceId": chosen}, headers=headers, timeout=10
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["voice_id"] == chosen
    assert _stored(database_url, signed_up.uid)["voice_id"] == chosen
    assert (
        httpx.get(f"{live_token_server.url}/me/settings", headers=headers, timeout=10).json()["voice_id"]
        == chosen
    )

    resp = httpx.put(
        f"{live_token_server.url}/me/settings", json={"voice_id": None}, headers=headers, timeout=10
    )
    assert resp.status_code == 200 and resp.json()["voice_id"] is None


def test_a_refused_voice_changes_nothing_else(live_token_server, user) -> None:
    _, token, _ = user
    headers = {"Authorization": f"Bearer {token}"}
    resp = httpx.put(
        f"{live_token_server.url}/me/settings",
        json={"voice_id": "NotOfferedVoice0002", "greeting": "Should not be kept"},
        headers=headers,
        timeout=10,
    )
    assert resp.status_code == 422
    assert (
        httpx.get(f"{live_token_server.url}/me/settings", headers=headers, timeout=10).json()["greeting"]
        is None
    )
