"""Capacity: how many simultaneous calls one worker carries, and what voicedesk's own work costs.

The real stack (LiveKit server, the token server with Firebase-style RS256 tokens, Postgres, the
provider emulators injecting a good cloud stack's latencies: STT final 350 ms, LLM first token
375 ms, TTS first byte 100 ms) and two real workers side by side:

- ``voicedesk``: the worker as deployed (call record, knowledge-base retrieval, recording);
- ``baseline``: the same worker with ``FEATURES_OFF=call_record,retrieval,recording`` (dev and
  test only): no call/turn/event rows, journal or summary, no knowledge-base search, no recording;
- ``no_call_record``, ``no_retrieval``, ``no_recording``: one feature off each, at
  ``--feature-levels`` only (default: 1 call), so voicedesk / ``no_<feature>`` is that feature's cost.

All run in the same ``make bench`` run so their ratios (voicedesk / the other mode) compare like
with like; levels alternate between them (voicedesk at N calls, then baseline at N calls, ...)
so load from neighbours on a shared machine hits all alike. At each level (1, 2, 4, 6, ... up to
``--max``) N web callers (LiveKit's Python rtc client, each with its own token from the token
server, so each call is its own room and job process) join, are greeted, and each then asks
``--turns`` questions in a loop, more at low levels so that a level has at least 20 answers
(callers start up to 3 s apart, then each asks once the previous answer has ended and a second
has passed).

Per turn:
- voice to voice: the caller's last voiced audio leaving its microphone to the first loud frame of
  the answer it receives;
- end of utterance: from the worker's own log line ``user turn committed`` (LiveKit Agents, in both
  modes; the call record is off in the baseline; LiveKit logs it at debug level only, so both
  workers run with ``--log-level debug``: a few lines per turn, the same in both modes, and the
  log's growth is reported): the commit's timestamp minus the
  ``last_speaking_time`` it carries, the same interval LiveKit stores as ``end_of_turn_delay``
  (and voicedesk as ``call_turns.latency.end_of_utterance_ms``; the voicedesk mode reports how
  far the two differ);
- overhead: voice to voice minus end of utterance minus the injected latencies still on the path
  after the commit, as ``bench.turn_latency`` defines it: the TTS's 100 ms, and of the LLM's
  375 ms what preemptive generation (its lead before the commit is logged per turn) had not
  already covered; ``after_commit_ms`` (voice to voice minus end of utterance) is stored too.

Audio falls behind real time, precisely:
- the agent's: an answer's loud span as received (first to last 10 ms frame above speech level)
  is longer than the same answer's own audio (the emulator's espeak-ng synthesis of that text) by
  more than 100 ms at the level's p95 - every underrun while the agent streams its reply stretches
  it, since the caller's stream is played out at real time;
- the callers' (this process): a caller received less than 98 % of the window's wall time as
  audio frames, i.e. its playout stream delivered frames slower than real time (then the
  figures measure this process, not the worker; its event-loop lag is reported too).

A mode stops at the first level where an answer is missed, audio falls behind real time, or the
overhead p95 rises more than 50 ms above its single-call figure; ``calls_per_core`` is the
largest level that passed divided by ``os.cpu_count()``. Per level: CPU seconds per call-second
of the worker's process tree (main process, job processes, inference process; per process, so a
job process that started mid-window counts from zero), of the LiveKit server and of Postgres
(the benchmark's embedded one); RSS and PSS of the worker tree and of the job processes serving
the level's calls (from the pids the worker logs per room: the per-call figure); and whether the
call record and recordings were written (voicedesk) or not (baseline).

The callers run in this process on the same cores, as do LiveKit, Postgres and the emulators:
on a 2-core machine the figures are for the whole box, not the worker alone.

    python -m bench.capacity [--max 12] [--turns 6] [--levels 1 2 4] [--modes voicedesk baseline ...]
        [--feature-levels 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import psycopg
from livekit import api, rtc

from bench.common import (
    BENCH_DATA_DIR,
    bench_server,
    environment,
    percentiles,
    scratch_database,
    table,
    write_result,
)
from bench.stack import INJECTED_LLM_MS, INJECTED_TTS_MS, LATENCIES
from bench.turn_latency import last_voiced_s
from tests.emulators.openai_api import default_answer
from tests.emulators.speech import synthesize_pcm
from tests.support.agent_worker import start_worker
from tests.support.audio import SAMPLE_RATE, read_pcm, rms, synthesize
from tests.support.firebase_emulator import SigningAuthority, firebase_claims
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.processes import Service
from tests.support.provider_emulators import start_provider_emulators
from tests.support.rtc_caller import SPEECH_RMS, Caller
from tests.support.token_server import start_token_server, token_server_env

QUESTION = "What are your opening hours?"
ANSWER = default_answer([{"role": "user", "content": QUESTION}])  # the LLM emulator's reply
MODES = {
    "voicedesk": "",
    "baseline": "call_record,retrieval,recording",
    # one feature off each: voicedesk / no_<feature> is what that feature costs
    "no_call_record": "call_record",
    "no_retrieval": "retrieval",
    "no_recording": "recording",
}
FEATURE_MODES = ("no_call_record", "no_retrieval", "no_recording")
AGENTS = {
    m: "voicedesk-bench" if m == "voicedesk" else f"voicedesk-bench-{m.replace('_', '-')}" for m in MODES
}
MIN_TURNS_PER_LEVEL = 20
OVERHEAD_SLACK_MS = 50.0  # stop when overhead p95 exceeds the single-call p95 by more than this
STRETCH_LIMIT_MS = 100.0  # an answer this much longer than its own audio fell behind real time
RECEIVE_RATIO_MIN = 0.98  # a caller receiving less audio than this share of wall time is behind
PAUSE_S = 1.0  # between an answer's end and the next question
STAGGER_S = 3.0  # callers start their loops up to this far apart
FRAME_S = 0.010


# the callers ------------------------------------------------------------------------------------


@dataclass
class MeasuringCaller(Caller):
    """A `Caller` that also keeps every received frame: (arrival, RMS, seconds of audio)."""

    frames: list[tuple[float, float, float]] = field(default_factory=list)

    async def _listen(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            level, now = rms(samples), time.monotonic()
            self.frames.append((now, level, event.frame.samples_per_channel / event.frame.sample_rate))
            if level > SPEECH_RMS:
                self.loud_frames.append(now)


@dataclass
class Turn:
    room: str
    spoke_until: float  # monotonic: end of the question's voiced audio leaving the microphone
    heard: float | None = None  # monotonic: first loud frame of the answer
    listening: float | None = None  # monotonic: the agent back to listening after it


async def _converse(
    caller: MeasuringCaller, room: str, question: np.ndarray, turns: int, delay: float
) -> list[Turn]:
    """Ask ``turns`` questions, each once the previous answer has ended; a missed answer ends the loop."""
    voiced_s = last_voiced_s(question)
    await asyncio.sleep(delay)
    done: list[Turn] = []
    for _ in range(turns):
        await caller.wait_for(lambda: caller.agent_state() == "listening", 60, "the agent to listen")
        await asyncio.sleep(PAUSE_S)
        asked = len(caller.speech_sent_at)
        caller.say(question)
        await caller.wait_for(lambda a=asked: len(caller.speech_sent_at) > a, 10, "the question to leave")
        turn = Turn(room, caller.speech_sent_at[asked] + voiced_s)
        done.append(turn)
        try:
            await caller.wait_for(lambda t=turn: caller.heard_since(t.spoke_until) >= 3, 30, "the answer")
        except AssertionError:
            return done  # missed: heard stays None
        turn.heard = caller.first_heard_since(turn.spoke_until)
        heard = turn.heard or 0.0
        await caller.wait_for(
            lambda h=heard: any(s == "listening" and t > h for t, s in caller.agent_states),
            60,
            "the answer's end",
        )
        turn.listening = next(t for t, s in caller.agent_states if s == "listening" and t > heard)
    return done


def loud_span_s(loud: Iterable[float]) -> float | None:
    """First to last loud frame (plus that frame), seconds."""
    times = sorted(loud)
    return times[-1] - times[0] + FRAME_S if times else None


def reference_span_s(pcm: bytes, rate: int) -> float:
    """The loud span of an answer's own audio, measured like the received one (10 ms frames)."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    step = round(rate * FRAME_S)
    frames = samples[: len(samples) // step * step].astype(np.float64).reshape(-1, step)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > SPEECH_RMS)
    return float((loud[-1] - loud[0] + 1) * FRAME_S) if loud.size else 0.0


async def _loop_lag(lags_ms: list[float], stop: asyncio.Event) -> None:
    """How late this process's event loop wakes up: the callers' own share of the timings."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.02)
        lags_ms.append((time.perf_counter() - started - 0.02) * 1000)


# processes --------------------------------------------------------------------------------------


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_snapshot(pid: int | None) -> dict[tuple[int, float], float]:
    """CPU seconds (user + system) of each process in the tree, keyed by (pid, start time)."""
    snap = {}
    for p in _tree(pid):
        try:
            t = p.cpu_times()
            snap[(p.pid, p.create_time())] = t.user + t.system
        except psutil.Error:
            pass
    return snap


def cpu_used(before: dict[tuple[int, float], float], after: dict[tuple[int, float], float]) -> float:
    """CPU seconds between two snapshots; a process born in between counts from zero."""
    return sum(cpu - before.get(key, 0.0) for key, cpu in after.items())


def memory_mb(processes: Iterable[psutil.Process]) -> dict[str, float]:
    rss = pss = 0.0
    for p in processes:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", 0.0)
        except psutil.Error:
            pass
    return {"rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1)}


def postgres_pid() -> int | None:
    """The benchmark's embedded Postgres (None with TEST_DATABASE_URL: not ours to measure)."""
    pidfile = BENCH_DATA_DIR / "postmaster.pid"
    if os.environ.get("TEST_DATABASE_URL") or not pidfile.exists():
        return None
    return int(pidfile.read_text().split()[0])


@dataclass
class Commit:
    room: str
    last_speaking: float  # wall clock, the worker's VAD end of speech
    at: float  # wall clock, the turn committed


@dataclass
class WorkerLog:
    """Reads the worker's JSON log as it grows: turn commits, job pids per room, process starts."""

    path: Path
    offset: int = 0
    commits: list[Commit] = field(default_factory=list)
    # (room, wall clock, ms the LLM started before the commit)
    preemptive: list[tuple[str, float, float]] = field(default_factory=list)
    pids: dict[str, set[int]] = field(default_factory=dict)
    initializing: set[int] = field(default_factory=set)
    initialized: set[int] = field(default_factory=set)

    def read(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[: end + 1].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            message, room, pid = rec.get("message"), rec.get("room"), rec.get("pid")
            if room and isinstance(pid, int):
                self.pids.setdefault(room, set()).add(pid)
            if message == "user turn committed" and room:
                at = dt.datetime.fromisoformat(rec["timestamp"]).timestamp()
                self.commits.append(Commit(room, float(rec["last_speaking_time"]), at))
            elif message == "using preemptive generation" and room:
                at = dt.datetime.fromisoformat(rec["timestamp"]).timestamp()
                self.preemptive.append((room, at, float(rec["preemptive_lead_time"]) * 1000))
            elif message == "initializing process" and isinstance(pid, int):
                self.initializing.add(pid)
            elif message == "process initialized" and isinstance(pid, int):
                self.initialized.add(pid)

    async def settle(self, within: float = 180) -> None:
        """Until every job process the worker started has finished its prewarm."""
        deadline = time.monotonic() + within
        while True:
            self.read()
            if self.initializing <= self.initialized or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)


@dataclass
class Worker:
    mode: str
    service: Service
    log: WorkerLog
    recordings: Path


# one level --------------------------------------------------------------------------------------


@dataclass
class Stack:
    livekit: LiveKitServer
    token_url: str
    authority: SigningAuthority
    db: str
    question: np.ndarray
    reference_span_s: float
    clock_offset: float  # wall clock minus monotonic


async def _join(stack: Stack, http: httpx.AsyncClient, agent: str, uid: str) -> tuple[MeasuringCaller, str]:
    resp = await http.post(
        "/token",
        headers={"Authorization": f"Bearer {stack.authority.sign(firebase_claims(uid))}"},
        json={"room_config": {"agents": [{"agent_name": agent}]}},
    )
    resp.raise_for_status()
    body = resp.json()
    room = (
        api.TokenVerifier(stack.livekit.api_key, stack.livekit.api_secret)
        .verify(body["participant_token"])
        .video.room
    )
    caller = MeasuringCaller()
    await caller.connect(body["server_url"], body["participant_token"])
    return caller, room


def _match(turn: Turn, commits: list[Commit], offset: float) -> Commit | None:
    """The commit that answered this question: the last in its room between the end of the
    question and the first sound of the answer."""
    if turn.heard is None:
        return None
    spoke, heard = turn.spoke_until + offset, turn.heard + offset
    found = [c for c in commits if c.room == turn.room and spoke - 0.3 < c.at < heard]
    return found[-1] if found else None


def _stored_eou(db: str, rooms: list[str]) -> dict[str, list[float]]:
    """call_turns.latency.end_of_utterance_ms per room, in order (voicedesk mode only)."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "select c.room_name, (t.latency->>'end_of_utterance_ms')::float from call_turns t"
            " join calls c on c.id = t.call_id where c.room_name = any(%s) and t.role = 'user'"
            " and t.latency ? 'end_of_utterance_ms' order by c.room_name, t.sequence",
            (rooms,),
        ).fetchall()
    stored: dict[str, list[float]] = {}
    for room, eou in rows:
        stored.setdefault(room, []).append(eou)
    return stored


def _rows_written(db: str, rooms: list[str]) -> dict[str, int]:
    with psycopg.connect(db) as conn:
        calls, ended = conn.execute(
            "select count(*), count(ended_at) from calls where room_name = any(%s)", (rooms,)
        ).fetchone()  # type: ignore[misc]
        turns = conn.execute(
            "select count(*) from call_turns t join calls c on c.id = t.call_id where c.room_name = any(%s)",
            (rooms,),
        ).fetchone()[0]  # type: ignore[index]
    return {"calls": calls, "calls_ended": ended, "call_turns": turns}


async def _rooms_gone(livekit: LiveKitServer, rooms: list[str], within: float = 60) -> None:
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            live = await lk.room.list_rooms(api.ListRoomsRequest(names=rooms))
            if not live.rooms:
                return
            await asyncio.sleep(0.5)


async def _level(stack: Stack, worker: Worker, n: int, turns: int, rng: random.Random) -> dict[str, Any]:
    started = time.monotonic()
    agent = AGENTS[worker.mode]
    async with httpx.AsyncClient(base_url=stack.token_url, timeout=30) as http:
        joined = await asyncio.gather(
            *(_join(stack, http, agent, f"bench-{worker.mode}-{n}-{i}-{time.time_ns()}") for i in range(n))
        )
    callers = [c for c, _ in joined]
    rooms = [r for _, r in joined]
    lags: list[float] = []
    stop = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(lags, stop))
    try:
        for c in callers:
            await c.wait_for(lambda c=c: c.heard_since(0) >= 5, 90, "the greeting")
        for c in callers:
            await c.wait_for(lambda c=c: c.agent_state() == "listening", 60, "the greeting to end")
        await asyncio.sleep(1.0)
        await worker.log.settle()  # replacement job processes prewarm outside the window
        wpid, lpid, ppid = worker.service.proc.pid, stack.livekit.service.proc.pid, postgres_pid()
        cpu0 = {k: cpu_snapshot(p) for k, p in (("worker", wpid), ("livekit", lpid), ("postgres", ppid))}
        bench0, t0 = psutil.Process().cpu_times(), time.monotonic()
        log0 = worker.log.path.stat().st_size
        lags.clear()
        results = await asyncio.gather(
            *(
                _converse(c, room, stack.question, turns, rng.uniform(0, STAGGER_S if n > 1 else 0))
                for c, room in zip(callers, rooms, strict=True)
            ),
            return_exceptions=True,
        )
        await asyncio.sleep(PAUSE_S)  # the last answers' tail frames
        t1 = time.monotonic()
        cpu1 = {k: cpu_snapshot(p) for k, p in (("worker", wpid), ("livekit", lpid), ("postgres", ppid))}
        cpu = {k: cpu_used(cpu0[k], after) for k, after in cpu1.items()}
        bench1 = psutil.Process().cpu_times()
        log_bytes = worker.log.path.stat().st_size - log0
        worker.log.read()
        job_pids = sorted({pid for r in rooms for pid in worker.log.pids.get(r, set())} - {wpid})
        # the calls' own job processes: unlike the tree, not swayed by how many idle ones wait
        cpu["jobs"] = cpu_used(cpu0["worker"], {k: v for k, v in cpu1["worker"].items() if k[0] in job_pids})
        tree = _tree(wpid)
        memory = {
            "worker_tree": memory_mb(tree),
            "job_processes": memory_mb(p for p in tree if p.pid in job_pids),
            "job_pids": job_pids,
        }
    finally:
        stop.set()
        await lag_task
        await asyncio.gather(*(c.close() for c in callers), return_exceptions=True)
    window = t1 - t0
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    asked = [t for r in results if not isinstance(r, BaseException) for t in r]

    samples: list[dict[str, Any]] = []
    for turn in asked:
        if turn.heard is None:
            continue
        caller = callers[rooms.index(turn.room)]
        upto = next((t.spoke_until for t in asked if t.room == turn.room and t.spoke_until > turn.heard), t1)
        span = loud_span_s(t for t in caller.loud_frames if turn.heard <= t < upto)
        commit = _match(turn, worker.log.commits, stack.clock_offset)
        v2v = (turn.heard - turn.spoke_until) * 1000
        sample: dict[str, Any] = {
            "room": turn.room,
            "voice_to_voice_ms": round(v2v, 1),
            "answer_stretch_ms": round((span - stack.reference_span_s) * 1000, 1) if span else None,
            "end_of_utterance_ms": None,
            "after_commit_ms": None,
            "overhead_ms": None,
            "preemptive": None,
        }
        if commit is not None:
            eou = (commit.at - commit.last_speaking) * 1000
            sample["end_of_utterance_ms"] = round(eou, 1)
            sample["after_commit_ms"] = round(v2v - eou, 1)
            lead = next(
                (ms for r, at, ms in worker.log.preemptive if r == turn.room and abs(at - commit.at) < 0.1),
                None,
            )
            injected = max(0.0, INJECTED_LLM_MS - (lead or 0.0)) + INJECTED_TTS_MS
            sample["overhead_ms"] = round(v2v - eou - injected, 1)
            sample["preemptive"] = lead is not None
        samples.append(sample)

    received = []
    for c in callers:
        got = sum(secs for at, _, secs in c.frames if t0 <= at <= t1)
        received.append(round(got / window, 4) if window > 0 else 0.0)

    await _rooms_gone(stack.livekit, rooms)
    check: dict[str, Any] = {"recordings": 0}
    if writes_record(worker.mode):  # the record is written after the room is gone: wait for it
        deadline = time.monotonic() + 60
        while True:
            rows = _rows_written(stack.db, rooms)
            if rows["calls_ended"] >= n or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    else:
        await asyncio.sleep(3)
        rows = _rows_written(stack.db, rooms)
    check.update(rows)
    ids = {r.removeprefix("call-") for r in rooms}  # rooms are call-<call id>, files <call id>.ogg
    check["recordings"] = sum(1 for f in worker.recordings.rglob("*.ogg") if f.stem in ids)
    eou_check = None
    if writes_record(worker.mode):
        stored = _stored_eou(stack.db, rooms)
        logged: dict[str, list[float]] = {}
        for commit in worker.log.commits:
            if commit.room in rooms:
                logged.setdefault(commit.room, []).append((commit.at - commit.last_speaking) * 1000)
        diffs = [
            abs(a - b) for r in rooms for a, b in zip(stored.get(r, []), logged.get(r, []), strict=False)
        ]
        eou_check = percentiles(diffs) if diffs else None

    def summary(key: str) -> dict[str, float] | None:
        values = [s[key] for s in samples if s[key] is not None]
        return percentiles(values) if values else None

    call_seconds = n * window
    return {
        "mode": worker.mode,
        "calls": n,
        "window_s": round(window, 2),
        "turns_asked": len(asked),
        "answers_missed": sum(1 for t in asked if t.heard is None) + len(errors),
        "turns_unmatched": sum(1 for s in samples if s["end_of_utterance_ms"] is None),
        "errors": errors,
        "voice_to_voice_ms": summary("voice_to_voice_ms"),
        "end_of_utterance_ms": summary("end_of_utterance_ms"),
        "after_commit_ms": summary("after_commit_ms"),
        "overhead_ms": summary("overhead_ms"),
        "answer_stretch_ms": summary("answer_stretch_ms"),
        "preemptive_share": round(
            statistics.fmean(
                [1.0 if s["preemptive"] else 0.0 for s in samples if s["preemptive"] is not None]
            ),
            3,
        )
        if any(s["preemptive"] is not None for s in samples)
        else None,
        "caller_receive_ratio_min": min(received) if received else None,
        "bench_loop_lag_ms": percentiles(lags) if lags else None,
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()}
        | {"bench_process": round((bench1.user + bench1.system) - (bench0.user + bench0.system), 2)},
        "cpu_per_call_second": {
            k: round(v / call_seconds, 4) if call_seconds else None for k, v in cpu.items()
        },
        "memory": memory,
        "worker_log_bytes_per_call_second": round(log_bytes / call_seconds) if call_seconds else None,
        "rss_per_call_mb": round(memory["job_processes"]["rss_mb"] / max(len(job_pids), 1), 1),
        "pss_per_call_mb": round(memory["job_processes"]["pss_mb"] / max(len(job_pids), 1), 1),
        "worker_tree_rss_per_call_mb": round(memory["worker_tree"]["rss_mb"] / n, 1),
        "eou_log_vs_call_turns_ms": eou_check,
        "written": check,
        "seconds": round(time.monotonic() - started, 1),
        "samples": samples,
    }


def verdict(level: dict[str, Any], single: dict[str, Any] | None) -> str | None:
    """Why this level does not pass, or None."""
    if level["answers_missed"]:
        return f"{level['answers_missed']} answer(s) missed"
    stretch = level["answer_stretch_ms"]
    if stretch is not None and stretch["p95"] > STRETCH_LIMIT_MS:
        return (
            f"agent audio fell behind real time (answer stretch p95 {stretch['p95']} ms"
            f" > {STRETCH_LIMIT_MS:g})"
        )
    ratio = level["caller_receive_ratio_min"]
    if ratio is not None and ratio < RECEIVE_RATIO_MIN:
        return f"callers received audio slower than real time ({ratio:.3f} of wall time; this process)"
    if level["overhead_ms"] is None:
        return "no turn could be matched to its end of utterance"
    if single is not None and single["overhead_ms"] is not None:
        limit = single["overhead_ms"]["p95"] + OVERHEAD_SLACK_MS
        if level["overhead_ms"]["p95"] > limit:
            return (
                f"overhead p95 {level['overhead_ms']['p95']} ms > single-call "
                f"{single['overhead_ms']['p95']} + {OVERHEAD_SLACK_MS:g} ms"
            )
    return None


def writes_record(mode: str) -> bool:
    return "call_record" not in MODES[mode].split(",")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b and b > 0 and a > 0 else None


def ratios(voicedesk: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """voicedesk / another mode at one level (overhead as a difference too: it may be near zero
    or negative)."""
    out: dict[str, Any] = {"calls": voicedesk["calls"]}
    for k in ("jobs", "worker", "livekit", "postgres"):
        out[f"cpu_per_call_{k}"] = _ratio(
            voicedesk["cpu_per_call_second"][k], baseline["cpu_per_call_second"][k]
        )
    out["rss_per_call"] = _ratio(voicedesk["rss_per_call_mb"], baseline["rss_per_call_mb"])
    out["pss_per_call"] = _ratio(voicedesk["pss_per_call_mb"], baseline["pss_per_call_mb"])
    for key in ("overhead_ms", "after_commit_ms"):
        v, b = voicedesk[key], baseline[key]
        if v and b:
            out[f"{key}_p50_diff"] = round(v["p50"] - b["p50"], 1)
            out[f"{key}_p95_diff"] = round(v["p95"] - b["p95"], 1)
            out[f"{key}_p50_ratio"] = _ratio(v["p50"], b["p50"])
            out[f"{key}_p95_ratio"] = _ratio(v["p95"], b["p95"])
    return out


# the run ----------------------------------------------------------------------------------------


def _worker_env(
    mode: str, livekit: LiveKitServer, emulator_env: dict[str, str], db: str, work: Path, top: int
) -> dict[str, str]:
    env = {
        **livekit.env(),
        **emulator_env,
        "DATABASE_URL": db,
        "APP_ENV": "test",
        "AGENT_NAME": AGENTS[mode],
        "WORKER_MAX_CALLS": str(top + 1),
        "WORKER_NUM_IDLE_PROCESSES": str(top),  # every call of a level starts on a warm process
        "GREETING_CACHE_DIR": str(work / "greetings"),
        "SILENCE_REPROMPT_SECONDS": "600",
        "MAX_CALL_SECONDS": "7200",
        "CALL_JOURNAL_DIR": str(work / mode / "journal"),
        "RECORDINGS_BACKEND": "local",
        "RECORDINGS_DIR": str(work / mode / "recordings"),
        "RECORDING_ENABLED": "true",
    }
    if MODES[mode]:
        env["FEATURES_OFF"] = MODES[mode]
    return env


async def _run(
    levels: list[int], turns: int, modes: list[str], seed: int, feature_levels: list[int]
) -> dict[str, Any]:
    def levels_of(mode: str) -> list[int]:
        """The one-feature-off modes measure a feature's cost, not the load ladder."""
        return [n for n in levels if n in feature_levels] if mode in FEATURE_MODES else levels

    modes = [m for m in modes if levels_of(m)]
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-capacity-"))
    question = read_pcm(synthesize(QUESTION, work / "question.wav"))
    reference = reference_span_s(await synthesize_pcm(ANSWER, SAMPLE_RATE), SAMPLE_RATE)
    authority = SigningAuthority(max_age=3600)
    rng = random.Random(seed)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    stopped: dict[str, str] = {}
    with bench_server(), scratch_database() as db:
        livekit = start_livekit(work / "livekit")
        emulators = start_provider_emulators(work / "emulators")
        workers: dict[str, Worker] = {}
        token_server = None
        try:
            emulators.script(stt_default=QUESTION)
            for provider, values in LATENCIES.items():
                emulators.set_latency(provider, **values)
            for mode in modes:
                name = f"worker-{mode}"
                service = start_worker(
                    work / mode,
                    _worker_env(mode, livekit, emulators.env(), db, work, max(levels_of(mode))),
                    name=name,
                    timeout=300,
                    log_level="debug",  # LiveKit logs turn commits only at debug
                )
                workers[mode] = Worker(
                    mode, service, WorkerLog(work / mode / f"{name}.log"), work / mode / "recordings"
                )
            token_server = start_token_server(
                work / "token-server",
                {
                    **token_server_env(db),
                    **livekit.env(),
                    "FIREBASE_ID_TOKEN_CERTS_URL": authority.certs_url,
                    "AGENT_NAME": AGENTS[modes[0]],
                    "ALLOWED_AGENT_NAMES": ",".join(AGENTS[m] for m in modes),
                },
            )
            stack = Stack(
                livekit, token_server.url, authority, db, question, reference, time.time() - time.monotonic()
            )
            for worker in workers.values():
                await worker.log.settle()
            for n in levels:
                for mode in modes:
                    if mode in stopped or n not in levels_of(mode):
                        continue
                    # at least MIN_TURNS_PER_LEVEL answers a level, so its p95 is not just its maximum
                    per_caller = max(turns, math.ceil(MIN_TURNS_PER_LEVEL / n))
                    level = await _level(stack, workers[mode], n, per_caller, rng)
                    level["verdict"] = verdict(level, results[mode][0] if results[mode] else None)
                    results[mode].append(level)
                    _print_level(level)
                    if level["verdict"]:
                        stopped[mode] = f"{n} calls: {level['verdict']}"
                    await workers[mode].log.settle()
                if all(m in stopped or not [k for k in levels_of(m) if k > n] for m in modes):
                    break
        finally:
            if token_server is not None:
                token_server.service.stop()
            for worker in workers.values():
                worker.service.stop()
            emulators.stop()
            livekit.service.stop()
            authority.close()

    cores = os.cpu_count() or 1
    per_mode: dict[str, Any] = {}
    for mode, done in results.items():
        passed = [lv for lv in done if not lv["verdict"]]
        top = passed[-1] if passed else None
        per_mode[mode] = {
            "levels_passed": [lv["calls"] for lv in passed],
            "stop_reason": stopped.get(mode, f"ran its levels ({levels_of(mode)}) without stopping"),
            "max_calls": top["calls"] if top else 0,
            "calls_per_core": round(top["calls"] / cores, 2) if top else 0.0,
            "worker_cpu_per_call_second_at_max": top["cpu_per_call_second"]["worker"] if top else None,
            "single_call_overhead_ms": done[0]["overhead_ms"] if done else None,
        }
    over = {
        other: [ratios(v, b) for v in results.get("voicedesk", []) for b in done if v["calls"] == b["calls"]]
        for other, done in results.items()
        if other != "voicedesk"
    }
    return {
        "benchmark": "capacity",
        "environment": environment() | {"load_average_at_end": os.getloadavg()},
        "settings": {
            "levels": levels,
            "feature_levels": feature_levels,
            "turns_per_caller": turns,
            "modes": {m: MODES[m] or "(all on)" for m in modes},
            "latencies": LATENCIES,
            "question": QUESTION,
            "answer": ANSWER,
            "answer_reference_span_ms": round(reference * 1000, 1),
            "overhead_slack_ms": OVERHEAD_SLACK_MS,
            "stretch_limit_ms": STRETCH_LIMIT_MS,
            "receive_ratio_min": RECEIVE_RATIO_MIN,
            "pause_s": PAUSE_S,
            "stagger_s": STAGGER_S,
            "seed": seed,
            "cpu_count": cores,
        },
        "summary": per_mode,
        # per other mode: voicedesk / baseline is all three features, voicedesk / no_X is X's cost
        "ratios_voicedesk_over": over,
        "levels": results,
    }


def _p(block: dict[str, float] | None, key: str) -> Any:
    return block[key] if block else "-"


def _print_level(level: dict[str, Any]) -> None:
    print(
        f"{level['mode']:>9} {level['calls']:>2} calls: overhead p50/p95 {_p(level['overhead_ms'], 'p50')}/"
        f"{_p(level['overhead_ms'], 'p95')} ms, CPU/call-s jobs {level['cpu_per_call_second']['jobs']}"
        f" worker {level['cpu_per_call_second']['worker']}, "
        f"stretch p95 {_p(level['answer_stretch_ms'], 'p95')} ms -> {level['verdict'] or 'ok'}",
        flush=True,
    )


def _levels(top: int) -> list[int]:
    return [n for n in [1, 2, *range(4, top + 1, 2)] if n <= top]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max", type=int, default=12, help="the largest level (1, 2, 4, 6, ... up to it)")
    parser.add_argument("--levels", type=int, nargs="+", help="explicit levels instead of --max's")
    parser.add_argument("--turns", type=int, default=6, help="questions each caller asks per level")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument(
        "--feature-levels", type=int, nargs="+", default=[1], help="levels the no_<feature> modes run at"
    )
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    levels = sorted(set(args.levels)) if args.levels else _levels(args.max)
    started = time.monotonic()
    result = asyncio.run(_run(levels, args.turns, args.modes, args.seed, args.feature_levels))
    result["seconds"] = round(time.monotonic() - started, 1)
    path = write_result("capacity", result)
    rows = [
        [
            lv["mode"],
            lv["calls"],
            _p(lv["overhead_ms"], "p50"),
            _p(lv["overhead_ms"], "p95"),
            _p(lv["end_of_utterance_ms"], "p50"),
            _p(lv["answer_stretch_ms"], "p95"),
            lv["cpu_per_call_second"]["jobs"],
            lv["cpu_per_call_second"]["worker"],
            lv["cpu_per_call_second"]["livekit"],
            lv["cpu_per_call_second"]["postgres"],
            lv["rss_per_call_mb"],
            lv["pss_per_call_mb"],
            lv["verdict"] or "ok",
        ]
        for mode in result["levels"].values()
        for lv in mode
    ]
    print(
        table(
            [
                "mode",
                "calls",
                "overhead p50",
                "p95 ms",
                "EOU p50 ms",
                "stretch p95 ms",
                "jobs CPU/call-s",
                "worker CPU/call-s",
                "LiveKit",
                "Postgres",
                "RSS/call MB",
                "PSS/call MB",
                "verdict",
            ],
            rows,
        )
    )
    for mode, s in result["summary"].items():
        print(f"{mode}: {s['max_calls']} calls ({s['calls_per_core']} per core); stopped: {s['stop_reason']}")
    for other, rows_over in result["ratios_voicedesk_over"].items():
        if not rows_over:
            continue
        print(f"voicedesk / {other}")
        keys = [
            "cpu_per_call_jobs",
            "cpu_per_call_worker",
            "rss_per_call",
            "pss_per_call",
            "overhead_ms_p50_diff",
            "overhead_ms_p95_diff",
        ]
        print(
            table(
                [
                    "calls",
                    "CPU/call (jobs)",
                    "CPU/call (worker)",
                    "RSS/call",
                    "PSS/call",
                    "overhead p50 +ms",
                    "p95 +ms",
                ],
                [[r["calls"], *(r.get(k, "-") for k in keys)] for r in rows_over],
            )
        )
    print(f"wrote {path} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
