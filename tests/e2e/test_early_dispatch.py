"""The agent is dispatched as the token is minted, so it waits in the room for the caller.

Everything is real: the token server creates the room through LiveKit's API, LiveKit hands the
job to the worker, and the Python caller joins afterwards. A caller who never joins leaves a
call stored as such, and no agent waiting for ever.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from livekit import api

import prompts
from tests.support.rtc_caller import Caller
from tests.support.web_call import stored_call, stored_turns

JOIN_TIMEOUT_S = 12  # CALLER_JOIN_TIMEOUT_SECONDS in the test workers' environment (tests/conftest.py)


async def _mint(token_server_url: str, id_token: str, livekit_server) -> tuple[str, str, str]:
    """POST /token as the user, and nothing else: no one joins with it yet."""
    async with httpx.AsyncClient(base_url=token_server_url, timeout=10) as http:
        resp = await http.post("/token", headers={"Authorization": f"Bearer {id_token}"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    verifier = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret)
    room = verifier.verify(body["participant_token"]).video.room
    return body["server_url"], body["participant_token"], room


async def _agents(livekit_server, room: str) -> list[api.ParticipantInfo]:
    keys = (livekit_server.api_key, livekit_server.api_secret)
    async with api.LiveKitAPI(livekit_server.http_url, *keys) as lk:
        try:
            resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        except api.TwirpError:  # no such room (yet, or any more)
            return []
    return [p for p in resp.participants if p.kind == api.ParticipantInfo.Kind.AGENT]


async def _agents_in(livekit_server, room: str) -> list[str]:
    return [p.identity for p in await _agents(livekit_server, room)]


async def test_the_agent_is_waiting_when_the_caller_joins(
    firebase_emulator, live_token_server, provider_emulators, agent_worker, livekit_server, database_url
) -> None:
    provider_emulators.reset()
    user = firebase_emulator.sign_up(display_name="Early Bird")
    pressed = time.monotonic()
    url, token, room = await _mint(live_token_server.url, user.id_token, livekit_server)

    # Nobody has joined with the token yet, and the agent is in the call's room already, its
    # voice published and its session started (lk.agent.state), waiting for the caller.
    deadline = time.monotonic() + 20
    agents: list[api.ParticipantInfo] = []
    while time.monotonic() < deadline:
        agents = await _agents(livekit_server, room)
        if agents and agents[0].tracks and "lk.agent.state" in agents[0].attributes:
            break
        await asyncio.sleep(0.1)
    assert len(agents) == 1, agents
    assert [t.type for t in agents[0].tracks] == [api.TrackType.AUDIO], agents[0]
    print("agent state before the caller joined:", agents[0].attributes.get("lk.agent.state"))
    agent_in_room = time.monotonic()

    caller = Caller()
    await caller.connect(url, token)
    try:
        await caller.wait_for(lambda: caller.loud_frames, 20.0, "the greeting audio")
        await caller.wait_for(lambda: caller.agent_finals(), 20.0, "the greeting transcript")
        assert caller.agent_finals()[0] == prompts.greeting("Early Bird")
        assert caller.connected_at is not None
        first = caller.loud_frames[0]
        # The agent's own "speaking" state (its playout started), as the caller's room saw it.
        speaking = next(t for t, state in caller.agent_states if state == "speaking")
        print(
            "\nMEASURED early dispatch: token requested -> agent ready in room "
            f"{agent_in_room - pressed:.3f}s; caller joined -> agent track subscribed "
            f"{caller.agent_audio_at - caller.connected_at:.3f}s; "
            f"caller joined -> agent speaking {speaking - caller.connected_at:.3f}s; "
            f"caller joined -> first greeting audio {first - caller.connected_at:.3f}s; "
            f"token requested -> first greeting audio {first - pressed:.3f}s"
        )
        # Exactly one agent: the token's own dispatch did not bring a second one on join.
        assert len(await _agents_in(livekit_server, room)) == 1
    finally:
        await caller.close()
    row = await stored_call(database_url, room)
    turns = await stored_turns(database_url, row["id"])
    assert [(t["role"], t["content"]) for t in turns] == [("assistant", prompts.greeting("Early Bird"))]


async def test_a_caller_who_never_joins_is_stored_as_such(
    firebase_emulator, live_token_server, provider_emulators, agent_worker, livekit_server, database_url
) -> None:
    provider_emulators.reset()
    user = firebase_emulator.sign_up(display_name="Never Came")
    _, _, room = await _mint(live_token_server.url, user.id_token, livekit_server)
    row = await stored_call(
        database_url, room, ready=lambda r: r["ended_at"] is not None, within=JOIN_TIMEOUT_S + 20
    )
    assert (row["status"], row["end_reason"]) == ("failed", "caller_never_joined")
    assert row["summary"] is None  # nothing was said: nothing to summarise
    assert await stored_turns(database_url, row["id"]) == []
    assert await _agents_in(livekit_server, room) == []  # the agent left; LiveKit closes the room
