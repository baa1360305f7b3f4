"""The call record survives the database going away: nothing lost, nothing stored twice.

Postgres is really stopped (pg_ctl) in the middle of a call and started again; the worker is
really killed (SIGKILL) while it holds journalled writes, and a new worker replays them.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from livekit import api

from tests.support.agent_worker import start_worker
from tests.support.audio import SAMPLE_RATE, read_pcm, synthesize
from tests.support.postgres_control import start_postgres, stop_postgres
from tests.support.rtc_caller import Caller
from tests.support.web_call import join_call, stored_call, stored_turns

QUESTIONS = ["Can I change my billing date?", "Do you offer a student discount?"]
ANSWERS = ["Yes, under Billing you can pick any day.", "We do not offer student discounts yet."]


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("outage-audio")
    return [synthesize(q, folder / f"{i}.wav") for i, q in enumerate(QUESTIONS)]


def _script(provider_emulators) -> None:
    provider_emulators.reset()
    provider_emulators.script(
        stt=QUESTIONS,
        llm=[{"text": a, "when": q.split()[-1].rstrip("?")} for q, a in zip(QUESTIONS, ANSWERS, strict=True)],
    )


async def _converse(caller: Caller, audio: list[Path]) -> list[float]:
    """Ask each question; the gaps from the end of the caller's speech to the agent's first audio."""
    gaps = []
    for wav, answer in zip(audio, ANSWERS, strict=True):
        await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the agent to listen")
        pcm = read_pcm(wav)
        caller.say(pcm)
        spoken_until = time.monotonic() + len(pcm) / SAMPLE_RATE
        await caller.wait_for(lambda a=answer: a in caller.agent_finals(), 40.0, f"the answer {answer!r}")
        await caller.wait_for(lambda t=spoken_until: caller.heard_since(t), 15.0, "the answer's audio")
        gaps.append(next(t for t in caller.loud_frames if t >= spoken_until) - spoken_until)
    await caller.wait_for(lambda: caller.agent_state() == "listening", 30.0, "the last answer to end")
    return gaps


async def _until(condition: Callable[[], bool], within: float) -> None:
    for _ in range(int(within / 0.2)):
        if condition():
            return
        await asyncio.sleep(0.2)


def _assert_once_each(turns: list[dict], greeting_word: str) -> None:
    spoken = [t["content"] for t in turns if t["role"] in ("user", "assistant")]
    counts = Counter(spoken)
    for text in [*QUESTIONS, *ANSWERS]:
        assert counts[text] == 1, f"{text!r} stored {counts[text]} times: {spoken}"
    assert any(greeting_word in t for t in spoken)
    assert len({t["sequence"] for t in turns}) == len(turns)
    assert spoken.index(QUESTIONS[0]) < spoken.index(ANSWERS[0]) < spoken.index(QUESTIONS[1])


async def test_postgres_stopped_mid_call_every_turn_stored_exactly_once(
    firebase_emulator,
    live_token_server,
    provider_emulators,
    agent_worker,
    livekit_server,
    database_url,
    audio,
) -> None:
    _script(provider_emulators)
    user = firebase_emulator.sign_up(display_name="Olive Outage")
    caller, room = await join_call(
        live_token_server.url, user, livekit_server.api_key, livekit_server.api_secret
    )
    try:
        await caller.wait_for(lambda: caller.agent_finals(), 20.0, "the greeting")
        await stored_call(database_url, room, ready=lambda row: row["status"] == "in_progress")
        stop_postgres()
        try:
            gaps = await _converse(caller, audio)  # the caller notices nothing
            heard = [round(g * 1000) for g in gaps]
            print(f"\nPostgres down: end of caller's speech -> first agent audio {heard} ms")
        finally:
            start_postgres(database_url)
        await asyncio.sleep(3)  # the writer replays its journal within a couple of seconds
    finally:
        await caller.close()
    row = await stored_call(database_url, room)
    assert row["status"] == "completed" and row["end_reason"] == "caller_hung_up"
    _assert_once_each(await stored_turns(database_url, row["id"]), "Olive")


async def test_killed_worker_journal_is_replayed_by_the_restarted_worker(
    firebase_emulator,
    live_token_server,
    provider_emulators,
    livekit_server,
    database_url,
    worker_env,
    audio,
    tmp_path,
) -> None:
    """A worker of its own (agent `voicedesk-sales`), so the session's worker keeps serving."""
    journal = tmp_path / "journal"
    env = {**worker_env, "AGENT_NAME": "voicedesk-sales", "CALL_JOURNAL_DIR": str(journal)}
    worker = start_worker(tmp_path, env, name="doomed-worker")
    _script(provider_emulators)
    user = firebase_emulator.sign_up(display_name="Kai Crash")
    caller, room = await join_call(
        live_token_server.url,
        user,
        livekit_server.api_key,
        livekit_server.api_secret,
        agent="voicedesk-sales",
    )
    try:
        await caller.wait_for(lambda: caller.agent_finals(), 20.0, "the greeting")
        await stored_call(database_url, room, ready=lambda row: row["status"] == "in_progress")
        stop_postgres()
        try:
            await _converse(caller, audio)
            await _until(lambda: any(p.stat().st_size for p in journal.glob("*.jsonl")), within=20)
            assert list(journal.glob("*.jsonl")), "nothing was journalled"
            worker.stop(sig=signal.SIGKILL)  # the whole process group, job process included
        finally:
            start_postgres(database_url)
    finally:
        await caller.close()

    restarted = start_worker(tmp_path, env, name="restarted-worker")
    try:
        await _until(lambda: not list(journal.glob("*.jsonl")), within=30)
        assert not list(journal.glob("*.jsonl")), "the restarted worker did not replay the journal"
        row = await stored_call(database_url, room, ready=lambda row: True)
        _assert_once_each(await stored_turns(database_url, row["id"]), "Kai")

        # Nobody will ever write this call's end: once its room is gone, the janitor closes it.
        async with api.LiveKitAPI(
            livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret
        ) as lk:
            try:
                await lk.room.delete_room(api.DeleteRoomRequest(room=room))
            except api.TwirpError as e:  # on a slow machine LiveKit's departure timeout beat us to it
                if e.code != api.TwirpErrorCode.NOT_FOUND:
                    raise
        closed = await stored_call(
            database_url, room, ready=lambda row: row["ended_at"] is not None, within=90
        )
        assert closed["status"] == "failed" and closed["end_reason"] == "agent_lost" and closed["degraded"]
    finally:
        restarted.stop()
