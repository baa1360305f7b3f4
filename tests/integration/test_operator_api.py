"""The operator API against real processes: token server, Auth emulator, Postgres.

Calls, turns and events are inserted with SQL (the agent's job in production). The database is
shared with other tests, so every test works inside its own caller profile and time window.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.integration.conftest import CallRows, SignedInOperator
from tests.support.firebase_emulator import FirebaseAuthEmulator
from tests.support.token_server import TokenServer


def get(server: TokenServer, path: str, who: SignedInOperator | None, **params: Any) -> httpx.Response:
    headers = who.headers if who is not None else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=15)


def window() -> datetime:
    """A start of day no other test uses (calls far in the past, so no real call falls in it)."""
    return datetime(1990, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(0, 9000))


def ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


# --- who may ---------------------------------------------------------------------------------------


def test_no_token_is_401(operator_server: TokenServer) -> None:
    for path in (
        "/calls",
        "/calls/search?q=hello",
        f"/calls/{uuid.uuid4()}",
        f"/calls/{uuid.uuid4()}/recording",
    ):
        resp = httpx.get(f"{operator_server.url}{path}", timeout=15)
        assert resp.status_code == 401, (path, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"


def test_signed_in_non_operator_is_403(
    operator_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    user = firebase_emulator.sign_up()
    # A claim that is merely truthy is not the operator role.
    firebase_emulator.set_custom_claims(user.uid, {"operator": "yes", "tier": "pro"})
    token = firebase_emulator.sign_in(user.email, user.password)

    for path in (
        "/calls",
        "/calls/search?q=hello",
        f"/calls/{uuid.uuid4()}",
        f"/calls/{uuid.uuid4()}/recording",
    ):
        resp = httpx.get(
            f"{operator_server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=15
        )
        assert resp.status_code == 403, (path, resp.text)
        assert "operator" in resp.json()["detail"]


def test_operator_claim_opens_the_api(operator_server: TokenServer, operator: SignedInOperator) -> None:
    resp = get(operator_server, "/calls", operator, limit=1)
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"items", "next_cursor"}


# --- lists and filters -----------------------------------------------------------------------------


def test_filters_by_time_channel_status_and_profile(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    day = window()
    ada, bob = call_rows.profile("Ada"), call_rows.profile("Bob")
    web_done = call_rows.call(started_at=day + timedelta(hours=1), profile_id=ada, channel="web")
    phone_failed = call_rows.call(
        started_at=day + timedelta(hours=2), profile_id=ada, channel="pstn_inbound", status="failed"
    )
    outbound = call_rows.call(
        started_at=day + timedelta(hours=3), profile_id=bob, channel="pstn_outbound", status="no_answer"
    )
    next_day = call_rows.call(started_at=day + timedelta(days=1, hours=1), profile_id=ada)
    the_day = {"since": day.isoformat(), "until": (day + timedelta(days=1)).isoformat()}

    assert ids(get(operator_server, "/calls", operator, **the_day)) == [
        str(outbound),
        str(phone_failed),
        str(web_done),
    ]
    assert ids(get(operator_server, "/calls", operator, **the_day, channel="pstn_inbound")) == [
        str(phone_failed)
    ]
    assert ids(get(operator_server, "/calls", operator, **the_day, status="no_answer")) == [str(outbound)]
    assert ids(get(operator_server, "/calls", operator, profile_id=str(ada))) == [
        str(next_day),
        str(phone_failed),
        str(web_done),
    ]
    assert ids(get(operator_server, "/calls", operator, profile_id=str(ada), channel="web")) == [
        str(next_day),
        str(web_done),
    ]
    # since inclusive, until exclusive.
    assert ids(
        get(
            operator_server,
            "/calls",
            operator,
            since=(day + timedelta(hours=2)).isoformat(),
            until=(day + timedelta(hours=3)).isoformat(),
        )
    ) == [str(phone_failed)]
    # Any offset: the same instant written in UTC-5.
    eastern = (day + timedelta(hours=2)).astimezone(timezone(timedelta(hours=-5)))
    assert ids(
        get(operator_server, "/calls", operator, since=eastern.isoformat(), until=the_day["until"])
    ) == [str(outbound), str(phone_failed)]
    # since after until: nothing, not an error.
    assert ids(get(operator_server, "/calls", operator, since=the_day["until"], until=the_day["since"])) == []

    item = get(operator_server, "/calls", operator, profile_id=str(bob)).json()["items"][0]
    assert item["caller_name"] == "Bob"
    assert item["channel"] == "pstn_outbound"
    assert item["direction"] == "outbound"
    assert item["has_recording"] is False


def test_pagination_walks_every_row_once_in_order(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    day = window()
    profile = call_rows.profile()
    # Ties on started_at on purpose: the id breaks them, so no row is skipped or repeated.
    times = [day + timedelta(minutes=i // 3) for i in range(23)]
    expected = {call_rows.call(started_at=t, profile_id=profile) for t in times}

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"profile_id": str(profile), "limit": 5}
        if cursor:
            params["cursor"] = cursor
        resp = get(operator_server, "/calls", operator, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        seen.extend(body["items"])
        pages += 1
        if pages == 2:
            # A call arriving mid-walk is newer than the cursor: it does not shift later pages.
            call_rows.call(started_at=day + timedelta(hours=5), profile_id=profile)
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["items"]) == 5

    assert pages == 5
    seen_ids = [item["id"] for item in seen]
    assert len(seen_ids) == len(set(seen_ids)) == 23
    assert {uuid.UUID(i) for i in seen_ids} == expected
    keys = [(item["started_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)


# --- one call in full ------------------------------------------------------------------------------


def test_call_detail_has_turns_in_order_events_metrics_and_summary(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    start = window() + timedelta(hours=9)
    profile = call_rows.profile("Grace")
    call_id = call_rows.call(
        started_at=start,
        ended_at=start + timedelta(minutes=2),
        profile_id=profile,
        channel="pstn_inbound",
        summary="Grace asked about a double charge; refund promised.",
        outcome="resolved",
        end_reason="caller_hung_up",
        degraded=True,
        metadata={"from": "+15550100"},
    )
    at = start + timedelta(seconds=1)
    # Written out of order, as a replayed journal might.
    call_rows.turn(
        call_id, 3, "assistant", "I have refunded it.", latency={"e2e_ms": 1200.0, "llm_ttft_ms": 300}
    )
    call_rows.turn(call_id, 0, "assistant", "Hello Grace, how can I help?", started_at=at)
    call_rows.turn(
        call_id,
        2,
        "tool",
        "",
        tool_name="search_knowledge_base",
        tool_arguments={"query": "double charge"},
        tool_result={"passages": [{"title": "Refunds", "score": 0.81}]},
        latency={"served_early": True, "search_ms": 12.5},
    )
    call_rows.turn(
        call_id,
        1,
        "user",
        "I was charged twice.",
        latency={"e2e_ms": 800.0, "stt_ms": 350, "end_of_utterance_ms": 500},
        interrupted=True,
    )
    call_rows.turn(call_id, 4, "user", "Thanks!", latency={"e2e_ms": 1000.0})
    call_rows.turn(call_id, 5, "assistant", "Bye.", latency={"e2e_ms": 3000.0, "tts_ttfb_ms": "n/a"})
    call_rows.event(call_id, 1, "participant_left", {"identity": "caller"}, start + timedelta(minutes=2))
    call_rows.event(call_id, 0, "participant_joined", {"identity": "caller"}, start)

    resp = get(operator_server, f"/calls/{call_id}", operator)

    assert resp.status_code == 200, resp.text
    call = resp.json()
    assert call["id"] == str(call_id)
    assert call["caller_name"] == "Grace"
    assert call["summary"] == "Grace asked about a double charge; refund promised."
    assert call["outcome"] == "resolved"
    assert call["degraded"] is True
    assert call["duration_seconds"] == pytest.approx(120.0)
    assert call["metadata"] == {"from": "+15550100"}
    assert [t["sequence"] for t in call["turns"]] == [0, 1, 2, 3, 4, 5]
    assert [t["role"] for t in call["turns"]] == [
        "assistant",
        "user",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]
    tool = call["turns"][2]
    assert tool["tool_name"] == "search_knowledge_base"
    assert tool["tool_arguments"] == {"query": "double charge"}
    assert tool["tool_result"]["passages"][0]["title"] == "Refunds"
    assert call["turns"][1]["interrupted"] is True
    assert call["turns"][1]["latency"]["stt_ms"] == 350
    assert [e["kind"] for e in call["events"]] == ["participant_joined", "participant_left"]
    assert call["events"][0]["detail"] == {"identity": "caller"}

    metrics = call["metrics"]
    assert metrics["turns"] == 6
    assert (metrics["user_turns"], metrics["assistant_turns"], metrics["tool_turns"]) == (2, 3, 1)
    assert metrics["interrupted_turns"] == 1
    e2e = metrics["latency"]["e2e_ms"]  # 800, 1000, 1200, 3000
    assert e2e["count"] == 4
    assert e2e["p50"] == pytest.approx(1100.0)
    assert e2e["p95"] == pytest.approx(1200 + 0.85 * 1800)
    assert e2e["max"] == pytest.approx(3000.0)
    assert e2e["mean"] == pytest.approx(1500.0)
    assert metrics["latency"]["llm_ttft_ms"]["p50"] == pytest.approx(300.0)
    assert metrics["latency"]["stt_ms"]["count"] == 1
    assert metrics["latency"]["tts_ttfb_ms"] is None  # "n/a" is not a measurement


def test_unknown_call_is_404(operator_server: TokenServer, operator: SignedInOperator) -> None:
    resp = get(operator_server, f"/calls/{uuid.uuid4()}", operator)
    assert resp.status_code == 404
    assert "no call" in resp.json()["detail"]


# --- transcript search -----------------------------------------------------------------------------


def test_full_text_search_finds_a_turn_by_word_and_by_stem(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    start = window()
    profile = call_rows.profile()
    hit = call_rows.call(started_at=start, profile_id=profile)
    miss = call_rows.call(started_at=start + timedelta(minutes=1), profile_id=profile)
    call_rows.turn(hit, 0, "assistant", "Hello, how can I help?")
    call_rows.turn(hit, 1, "user", "My pomegranate order was refunded twice and then charged again.")
    call_rows.turn(miss, 0, "user", "I cannot log in to the dashboard.")

    # The list's q filter: the exact word, then another form of it (stemmed: pomegranates, refunding).
    for q in ("pomegranate", "pomegranates", "refunding", '"order was refunded"'):
        assert ids(get(operator_server, "/calls", operator, profile_id=str(profile), q=q)) == [str(hit)], q
    assert (
        ids(get(operator_server, "/calls", operator, profile_id=str(profile), q="pomegranate -refund")) == []
    )
    assert ids(get(operator_server, "/calls", operator, profile_id=str(profile), q="dashboard")) == [
        str(miss)
    ]

    resp = get(operator_server, "/calls/search", operator, q="pomegranates refunding", limit=100)
    assert resp.status_code == 200, resp.text
    hits = [h for h in resp.json()["items"] if h["call_id"] == str(hit)]
    assert len(hits) == 1
    assert hits[0]["sequence"] == 1
    assert hits[0]["role"] == "user"
    assert "«pomegranate»" in hits[0]["snippet"]
    assert "«refunded»" in hits[0]["snippet"]
    assert hits[0]["rank"] > 0
    assert all(h["call_id"] != str(miss) for h in resp.json()["items"])


def test_search_with_only_stopwords_finds_nothing(
    operator_server: TokenServer, operator: SignedInOperator
) -> None:
    resp = get(operator_server, "/calls/search", operator, q="the and of")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"items": []}


# --- bad parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/calls", {"limit": "0"}, "limit"),
        ("/calls", {"limit": "201"}, "limit"),
        ("/calls", {"limit": "many"}, "limit"),
        ("/calls", {"channel": "fax"}, "channel"),
        ("/calls", {"status": "lost"}, "status"),
        ("/calls", {"since": "yesterday"}, "since"),
        ("/calls", {"since": "1700000000"}, "since"),  # unix time: not what the schema documents
        ("/calls", {"since": "2026-11-21T09:00:00"}, "since"),  # no offset: ambiguous
        ("/calls", {"since": "2026-11-21"}, "since"),
        ("/calls", {"until": "2026-13-01"}, "until"),
        ("/calls", {"profile_id": "not-a-uuid"}, "profile_id"),
        ("/calls", {"cursor": "garbage!"}, "cursor"),
        ("/calls", {"cursor": "eyJzIjoxfQ"}, "cursor"),  # valid base64 JSON, not our cursor
        ("/calls", {"q": ""}, "q"),
        ("/calls", {"chanel": "web"}, "chanel"),  # a mistyped filter must not return every call
        ("/calls/search", {}, "q"),
        ("/calls/search", {"q": "x", "limit": "101"}, "limit"),
        (f"/calls/{'nope'}", {}, "call_id"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    operator_server: TokenServer, operator: SignedInOperator, path: str, params: dict[str, str], field: str
) -> None:
    resp = get(operator_server, path, operator, **params)
    assert resp.status_code == 422, resp.text
    locs = [err["loc"] for err in resp.json()["detail"]]
    assert any(loc[-1] == field for loc in locs), locs
