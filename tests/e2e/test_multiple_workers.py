"""Two real worker processes share calls for one agent name, and one of them stops gracefully.

Each worker takes WORKER_MAX_CALLS=1 call (plus WORKER_OVERFLOW_CALLS=1 that only hears the busy
line), so "full" is reached with two callers. The callers are `livekit` Python clients that got
their tokens from a real token server dispatching ``voicedesk-pool``, a name the session's own
worker does not serve. Which worker took a call is read where a client would: the agent
participant's ``voicedesk.worker`` attribute (host:pid of the worker process).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from livekit import api, rtc

import prompts
from telephony.provisioning import setup
from telephony.settings import TelephonySettings
from tests.e2e.test_phone_calls import ended, heard_utterance, phone_call_row
from tests.support.agent_worker import start_worker
from tests.support.audio import read_pcm, synthesize
from tests.support.firebase_emulator import SignedUpUser
from tests.support.livekit_server import LiveKitServer
from tests.support.livekit_sip import LiveKitSip
from tests.support.processes import Service
from tests.support.rtc_caller import Caller
from tests.support.softphone import start_softphone
from tests.support.token_server import TokenServer, start_token_server
from tests.support.web_call import join_call, stored_call, stored_events, stored_turns, summarized

POOL_AGENT = "voicedesk-pool"
QUESTION = "Can you still hear me?"
ANSWER = "Yes, I can hear you clearly."
SUMMARY = "Caller checked the line during a worker restart and was answered."
BUSY_LINE = prompts.line("all_agents_busy")
POOL_NUMBER = "+15550177"  # a company number whose calls go to the pool's agent
PHONE_CALLER = "+15557000001"


@pytest.fixture(scope="module")
def pool_token_server(
    tmp_path_factory: pytest.TempPathFactory, live_token_server_env: dict[str, str]
) -> Iterator[TokenServer]:
    env = {**live_token_server_env, "AGENT_NAME": POOL_AGENT, "ALLOWED_AGENT_NAMES": POOL_AGENT}
    server = start_token_server(tmp_path_factory.mktemp("pool-token-server"), env, name="pool-token-server")
    yield server
    server.service.stop()


@pytest.fixture(scope="module")
def pool_workers(
    tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str]
) -> Iterator[tuple[Service, Service]]:
    """Two workers for ``voicedesk-pool``: one call each, one overflow call each."""
    base = tmp_path_factory.mktemp("pool")
    env = {
        **worker_env,
        "AGENT_NAME": POOL_AGENT,
        "WORKER_MAX_CALLS": "1",
        "WORKER_OVERFLOW_CALLS": "1",
        "SILENCE_REPROMPT_SECONDS": "600",  # the calls here wait on each other in silence
        "CALL_JOURNAL_DIR": str(base / "journal"),
    }
    a = start_worker(base / "a", env, name="worker-a")
    b = start_worker(base / "b", env, name="worker-b")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def pool_phone_line(sip_trunks: LiveKitSip, livekit_server: LiveKitServer) -> LiveKitSip:
    """A trunk and dispatch rule of their own (as `voicedesk sip setup` makes them) for the pool."""
    settings = TelephonySettings(
        livekit_url=livekit_server.url,
        livekit_api_key=livekit_server.api_key,
        livekit_api_secret=livekit_server.api_secret,
        agent_name=POOL_AGENT,
        sip_inbound_numbers=[POOL_NUMBER],
        sip_inbound_allowed_addresses=["127.0.0.1/32"],
        sip_inbound_trunk_name="voicedesk-pool-inbound",
        sip_dispatch_rule_name="voicedesk-pool-dispatch",
        sip_outbound_trunk_name="voicedesk-pool-outbound",
    )

    async def provision() -> None:
        async with api.LiveKitAPI(
            livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
        ) as lk:
            await setup(lk, settings)

    asyncio.run(provision())
    return sip_trunks


@pytest.fixture(scope="module")
def question_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(QUESTION, tmp_path_factory.mktemp("audio") / "question.wav")


def agent_of(caller: Caller) -> rtc.RemoteParticipant | None:
    for p in caller.room.remote_participants.values():
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return p
    return None


def worker_pid(caller: Caller) -> int:
    """The pid of the worker process that took this caller's call (from the agent's attributes)."""
    agent = agent_of(caller)
    assert agent is not None, "no agent in the room"
    label = agent.attributes.get("voicedesk.worker", "")
    assert ":" in label, f"the agent does not say which worker it runs on: {agent.attributes}"
    return int(label.rsplit(":", 1)[1])


def worker_label_of(worker: Service) -> str:
    return f"{socket.gethostname()}:{worker.proc.pid}"


async def live_workers(database_url: str) -> list[str]:
    """Workers in `agent_workers` for the pool: a worker that stopped has removed its row."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        query = "select id from agent_workers where agent_name = %s order by id"
        cur = await conn.execute(query, (POOL_AGENT,))
        return [row[0] for row in await cur.fetchall()]


async def until_idle(database_url: str, workers: list[Service], within: float = 60) -> None:
    """Wait until these workers hold no call (a call's job ends a little after its caller left)."""
    labels = {worker_label_of(w) for w in workers}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for _ in range(int(within / 0.25)):
            cur = await conn.execute(
                "select id, calls from agent_workers where id = any(%s)", (list(labels),)
            )
            rows = await cur.fetchall()
            if {r[0] for r in rows} == labels and all(r[1] == 0 for r in rows):
                return
            await asyncio.sleep(0.25)
    raise AssertionError(f"workers still busy after {within}s: {rows}")


async def greeted_call(
    server: TokenServer, user: SignedUpUser, livekit_server: LiveKitServer
) -> tuple[Caller, str]:
    """Join as ``user``; return once the greeting was heard (audio and transcript)."""
    caller, room = await join_call(server.url, user, livekit_server.api_key, livekit_server.api_secret)
    await caller.wait_for(lambda: agent_of(caller) is not None, 20.0, "the agent to join")
    await caller.wait_for(lambda: caller.agent_finals(), 30.0, "the greeting transcript")
    await caller.wait_for(lambda: caller.heard_since(0) >= 10, 15.0, "greeting audio")
    await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the greeting to end")
    return caller, room


async def test_calls_spread_full_workers_refuse_politely_and_a_stopped_worker_finishes_its_call(
    pool_workers,
    pool_token_server,
    firebase_emulator,
    provider_emulators,
    livekit_server,
    database_url,
    question_audio,
) -> None:
    a, b = pool_workers
    provider_emulators.reset()
    provider_emulators.script(
        stt=[QUESTION],
        llm=[
            {"text": ANSWER, "when": QUESTION},
            {
                "text": json.dumps({"summary": SUMMARY, "outcome": "resolved"}),
                "when": "Transcript of the call",
            },
        ],
    )
    callers: list[Caller] = []
    try:
        # 1. Two calls: one per worker. The first fills its worker, so LiveKit gives the second
        #    to the other one (a full worker takes no new call while another has room).
        first, first_room = await greeted_call(
            pool_token_server, firebase_emulator.sign_up(display_name="Ann First"), livekit_server
        )
        callers.append(first)
        second, second_room = await greeted_call(
            pool_token_server, firebase_emulator.sign_up(display_name="Bo Second"), livekit_server
        )
        callers.append(second)
        assert {worker_pid(first), worker_pid(second)} == {a.proc.pid, b.proc.pid}
        first_worker = a if worker_pid(first) == a.proc.pid else b
        other_worker = b if first_worker is a else a

        # 2. Every worker is full: the third caller hears the busy line (text and real audio),
        #    then the call ends; the row says it was refused for capacity.
        third, third_room = await join_call(
            pool_token_server.url,
            firebase_emulator.sign_up(display_name="Cy Third"),
            livekit_server.api_key,
            livekit_server.api_secret,
        )
        callers.append(third)
        await third.wait_for(lambda: BUSY_LINE in third.agent_finals(), 30.0, "the busy line")
        await third.wait_for(lambda: third.heard_since(0) >= 25, 15.0, "the busy line's audio")
        await third.wait_for(
            lambda: third.room.connection_state != rtc.ConnectionState.CONN_CONNECTED, 30.0, "the call to end"
        )
        busy = await stored_call(database_url, third_room, ready=lambda r: r["ended_at"] is not None)
        assert (busy["status"], busy["end_reason"]) == ("busy", "workers_full")
        events = await stored_events(database_url, busy["id"])
        capacity = [e["detail"] for e in events if e["kind"] == "capacity"]
        assert capacity and capacity[0]["max_calls"] == 1, events
        turns = await stored_turns(database_url, busy["id"])
        assert [(t["role"], t["content"]) for t in turns] == [("assistant", BUSY_LINE)]
        # The two calls in progress were not disturbed.
        assert (
            first.room.connection_state == second.room.connection_state == rtc.ConnectionState.CONN_CONNECTED
        )

        # 3. SIGTERM to the first call's worker (the main process, as an orchestrator does): it
        #    drains. Its call goes on: a question asked after the signal is answered.
        first_worker.proc.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        await asyncio.sleep(1.0)  # let the worker tell LiveKit it is draining
        assert first_worker.alive(), "the draining worker quit with a call in progress"
        asked_at = time.monotonic()
        first.say(read_pcm(question_audio))
        await first.wait_for(lambda: ANSWER in first.agent_finals(), 30.0, "the answer after SIGTERM")
        await first.wait_for(lambda: first.heard_since(asked_at + 0.5) >= 10, 15.0, "answer audio")

        # 4. The second caller leaves, so only the other worker has room: a new call goes there,
        #    not to the draining worker, and is a normal call.
        await second.close()
        await stored_call(database_url, second_room)
        fourth, _ = await greeted_call(
            pool_token_server, firebase_emulator.sign_up(display_name="Di Fourth"), livekit_server
        )
        callers.append(fourth)
        assert worker_pid(fourth) == other_worker.proc.pid
        assert first_worker.alive(), "the draining worker quit with a call in progress"

        # 5. The first caller hangs up: that call is stored completely, then its worker exits.
        await first.wait_for(lambda: first.agent_state() == "listening", 30.0, "the answer to end")
        await first.close()
        row = await stored_call(database_url, first_room, ready=summarized, within=30)
        assert (row["status"], row["end_reason"]) == ("completed", "caller_hung_up")
        assert row["summary"] == SUMMARY
        said = [(t["role"], t["content"]) for t in await stored_turns(database_url, row["id"])]
        assert ("user", QUESTION) in said and ("assistant", ANSWER) in said
        worker_events = [
            e["detail"] for e in await stored_events(database_url, row["id"]) if e["kind"] == "worker"
        ]
        assert worker_events and worker_events[0]["worker"].endswith(f":{first_worker.proc.pid}")
        exit_code = await asyncio.to_thread(first_worker.proc.wait, 60)
        assert exit_code == 0, f"the drained worker exited with {exit_code}"
        print(f"drained worker exited {time.monotonic() - signalled_at:.1f} s after SIGTERM")
        assert "draining worker" in first_worker.log()
        assert await live_workers(database_url) == [worker_label_of(other_worker)]
        assert other_worker.alive()
    finally:
        for caller in callers:
            await caller.close()


async def test_a_phone_caller_finding_every_worker_full_hears_the_busy_line(
    pool_workers,
    pool_token_server,
    pool_phone_line,
    firebase_emulator,
    livekit_server,
    database_url,
    tmp_path,
) -> None:
    """Same path as a web caller: the SIP participant hears the line, then LiveKit hangs up."""
    live = [w for w in pool_workers if w.alive()]  # the first test drained one of them
    callers: list[Caller] = []
    phone = start_softphone(tmp_path, "pool-caller", user=PHONE_CALLER)
    try:
        await until_idle(database_url, live)
        for i in range(len(live)):  # every worker gets its one call
            user = firebase_emulator.sign_up(display_name=f"Filler {i}")
            callers.append((await greeted_call(pool_token_server, user, livekit_server))[0])
        started = phone.call(pool_phone_line.uri(POOL_NUMBER))
        phone.wait_for("CALL_ESTABLISHED", 20)
        await heard_utterance(phone, BUSY_LINE, within=20)
        closed = phone.wait_for("CALL_CLOSED", 20, since=started)  # the agent hung up (BYE)
        assert "reset by peer" in (closed.param or "")
        row = await phone_call_row(database_url, from_number=PHONE_CALLER, ready=ended)
        assert (row["channel"], row["status"], row["end_reason"]) == ("pstn_inbound", "busy", "workers_full")
        assert row["to_number"] == POOL_NUMBER
        # The calls in progress were not disturbed.
        assert all(c.room.connection_state == rtc.ConnectionState.CONN_CONNECTED for c in callers)
    finally:
        phone.stop()
        for caller in callers:
            await caller.close()
