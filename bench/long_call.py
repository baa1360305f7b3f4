"""Long call: memory growth per hour and latency drift over one simulated 60-minute call.

The real stack as in `bench.turn_latency` (LiveKit server, one agent worker with recording on, the
token server with Firebase-style RS256 tokens, Postgres, the provider emulators injecting STT
final 350 ms, LLM first token 375 ms, TTS first byte 100 ms) and one web caller (LiveKit's Python
rtc client) who stays in the same call and asks question after question.

How the call is accelerated, and what that leaves out:

- Assumption: a caller turn every ``60 / --turns-per-minute`` seconds (default 3 a minute, one
  every 20 s: a few seconds of question, a spoken answer, a pause). A ``--minutes`` call then
  has ``minutes * turns_per_minute`` turns (180 for 60 minutes).
- By default those turns run back to back: the next question goes out 0.5 s after the previous
  answer has finished playing, so the idle listening time is cut. What grows per turn in the
  agent's call state (chat context sent to the LLM in full every turn, the session's history,
  speech handles and metrics, call_turns and call_events writes, retrieval per transcript) grows
  as it would over the full call. Sample ``k`` is placed at simulated time ``k * 60 /
  turns_per_minute`` seconds.
- Not accelerated: anything that runs on wall time. The caller's microphone streams real-time
  audio (silence between turns), so VAD, the STT stream, LiveKit's media path and the recorder
  (recording is on, as in production: both sides, Ogg/Opus, encoded to a file as the call goes,
  not held in memory) see only the wall time of the run, ~1/2.4 of the simulated time here.
  So growth is also fitted against wall time (``per_wall_hour``): growth driven by audio time
  shows up there, growth driven by turns in ``per_simulated_hour``. The recording's bytes per
  second are reported and extrapolated to a real hour.
- The emulated LLM's first token does not depend on the prompt's length; a real model's would
  (prefill). The prompt each turn sends is recorded (messages, characters) so that cost can be
  estimated separately. Answers are short ("You said: ..."), so the context grows by less text
  per turn than a real call's would; memory for that text is small next to per-turn objects.
- ``--real-time`` paces the turns on the wall clock instead (turn ``k`` starts ``(k - 1) *
  interval`` after the greeting): nothing is accelerated, and a 60-minute call takes an hour.
  Comparing its growth per turn and per wall hour with an accelerated run's tells growth that
  follows the turns from growth that follows the clock. ``--no-recording`` turns the recorder
  off, to see what of the growth is its.

Measured: the resident memory (RSS, and PSS/USS from ``/proc/<pid>/smaps_rollup``, which count
pages shared between forkserver children once) of the job process that holds the call, of the
whole worker process tree and of the LiveKit server, sampled before the call, after the greeting,
after every answer (the same quiet point of each turn) and after the call; the job process's CPU
time per turn; per turn voice to voice latency (the caller's last voiced audio leaving its
microphone to the first loud frame of the answer, as `bench.turn_latency` measures it) and the
agent's stored stage metrics (`call_turns.latency`). Growth: slope of a linear fit of memory
against simulated (and wall) hours, over all turns and after the first 10 % (warm-up), and last
minus first. Drift: slope of latency per simulated hour, and the median of the first vs the last
10 % of turns. At the end the call record is checked: one `call_turns` row per question and per
answer, plus the greeting.

    python -m bench.long_call [--minutes 60] [--turns-per-minute 3] [--real-time] [--no-recording]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg

from bench.common import bench_server, environment, percentiles, scratch_database, table, write_result
from bench.stack import INJECTED_LLM_MS, INJECTED_TTS_MS, LATENCIES, call_stack
from bench.turn_latency import QUESTION, commits, last_voiced_s
from tests.support.audio import read_pcm, synthesize
from tests.support.provider_emulators import ProviderEmulators
from tests.support.rtc_caller import Caller

PAUSE_S = 0.5  # between the end of an answer and the next question, accelerated
MISSES_IN_A_ROW = 3  # a call this broken says nothing more about growth: stop and report
ARENA = 64 * 1024 * 1024  # glibc's per-thread malloc arenas are mappings aligned to their size


# /proc -------------------------------------------------------------------------------------------
def _smaps_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private pages) in MB; PSS shares forkserver pages between processes."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        kb[name] = int(rest.split()[0])
    return {
        "rss": round(kb["Rss"] / 1024, 2),
        "pss": round(kb["Pss"] / 1024, 2),
        "uss": round((kb["Private_Clean"] + kb["Private_Dirty"]) / 1024, 2),
        # new anonymous memory (heap, arenas), unlike USS not moved by copy-on-write of pages
        # the job process inherited from the forkserver
        "anon": round(kb["Anonymous"] / 1024, 2),
    }


def _regions_kb(pid: int) -> dict[str, int]:
    """Resident kB per kind of mapping: where in the address space a process grows.

    ``[heap]`` is the main thread's malloc (Python objects larger than 512 bytes, C extensions),
    ``anon arena`` an anonymous mapping starting on a 64 MiB boundary (a glibc malloc arena of
    another thread: LiveKit's Rust FFI, onnxruntime, the recorder's encoder), ``anon`` the rest of
    the anonymous mappings (Python's object arenas, numpy buffers, large mallocs), else the file.
    """
    out: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if "-" in head[0] and not head[0].endswith(":"):
            start, end = (int(x, 16) for x in head[0].split("-"))
            path = head[5] if len(head) > 5 else ""
            if path:
                name = path
            else:
                name = "anon arena" if start % ARENA == 0 and end - start <= ARENA else "anon"
        elif head[0] == "Rss:":
            out[name] = out.get(name, 0) + int(head[1])
    return out


def _region_growth(before: dict[str, int], after: dict[str, int], top: int = 10) -> list[dict[str, Any]]:
    """The mappings whose resident size changed most, in MB."""
    names = set(before) | set(after)
    diffs = sorted(((after.get(n, 0) - before.get(n, 0), n) for n in names), reverse=True)
    return [
        {"mapping": n, "before_mb": round(before.get(n, 0) / 1024, 2), "change_mb": round(d / 1024, 2)}
        for d, n in diffs[:top]
        if d
    ]


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _job_pid(worker_pid: int, livekit_port: int) -> int:
    """The job process: the worker's only descendant connected to LiveKit (idle ones are not)."""
    found = []
    for proc in _tree(worker_pid)[1:]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        if any(c.raddr and c.raddr.port == livekit_port for c in conns):
            found.append(proc.pid)
    if len(found) != 1:
        raise RuntimeError(f"expected one job process connected to LiveKit, found {found}")
    return found[0]


def _sample(worker_pid: int, job_pid: int | None, livekit_pid: int) -> dict[str, Any]:
    """One memory and CPU reading of the job, the worker tree and the LiveKit server."""
    tree = {"rss": 0.0, "pss": 0.0, "uss": 0.0, "anon": 0.0}
    procs = 0
    for proc in _tree(worker_pid):
        try:
            mem = _smaps_mb(proc.pid)
        except (OSError, psutil.Error):
            continue  # gone between listing and reading
        procs += 1
        for k in tree:
            tree[k] += mem[k]
    out: dict[str, Any] = {
        "at": time.monotonic(),
        "worker_tree_procs": procs,
        **{f"worker_tree_{k}_mb": round(v, 2) for k, v in tree.items()},
        "worker_main_rss_mb": _smaps_mb(worker_pid)["rss"],
        "livekit_rss_mb": _smaps_mb(livekit_pid)["rss"],
        "livekit_cpu_s": round(_cpu_s(psutil.Process(livekit_pid)), 3),
    }
    if job_pid is not None and psutil.pid_exists(job_pid):
        with_job = _smaps_mb(job_pid)
        out.update({f"job_{k}_mb": v for k, v in with_job.items()})
        out["job_cpu_s"] = round(_cpu_s(psutil.Process(job_pid)), 3)
    return out


# figures -----------------------------------------------------------------------------------------
def _fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float] | None:
    """Least-squares line ``y = slope * x + intercept`` (x in hours or turns); None for < 3 points."""
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    slope, intercept = np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)
    return {"slope": round(float(slope), 3), "intercept": round(float(intercept), 3)}


def _first_last(values: Sequence[float]) -> dict[str, float] | None:
    """Median of the first and of the last 10 % (at least one value each)."""
    if len(values) < 2:
        return None
    n = max(1, len(values) // 10)
    first, last = statistics.median(values[:n]), statistics.median(values[-n:])
    return {"n_each": n, "first": round(first, 1), "last": round(last, 1), "change": round(last - first, 1)}


def _growth(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """How ``key`` (MB) grows with simulated and wall hours: fits (all, after warm-up) and ends."""
    rows = [s for s in samples if key in s]
    if len(rows) < 2:
        return {}
    warm = rows[max(1, len(rows) // 10) :]
    sim = [s["sim_s"] / 3600 for s in rows]
    wall = [s["wall_s"] / 3600 for s in rows]
    span_h = sim[-1] - sim[0]
    change = rows[-1][key] - rows[0][key]
    return {
        "first_mb": rows[0][key],
        "last_mb": rows[-1][key],
        "last_minus_first_mb": round(change, 2),
        "last_minus_first_per_simulated_hour_mb": round(change / span_h, 2) if span_h else None,
        "fit_per_simulated_hour": _fit(sim, [s[key] for s in rows]),
        "fit_per_simulated_hour_after_warmup": _fit(
            [s["sim_s"] / 3600 for s in warm], [s[key] for s in warm]
        ),
        "fit_per_wall_hour": _fit(wall, [s[key] for s in rows]),
        # kB per turn, from the same line over turns: tells turn-driven from time-driven growth
        # when runs at different paces are compared
        "fit_per_turn_kb": _per_turn_kb(rows, key),
    }


def _per_turn_kb(rows: list[dict[str, Any]], key: str) -> float | None:
    fit = _fit([float(s["turn"]) for s in rows], [s[key] for s in rows])
    return round(fit["slope"] * 1024, 1) if fit else None


def _drift(turns: list[dict[str, Any]], key: str) -> dict[str, Any]:
    rows = [t for t in turns if t.get(key) is not None]
    if not rows:
        return {}
    values = [float(t[key]) for t in rows]
    return {
        "percentiles": percentiles(values),
        "fit_per_simulated_hour": _fit([t["sim_s"] / 3600 for t in rows], values),
        "first_vs_last_10pct": _first_last(values),
    }


# the call ----------------------------------------------------------------------------------------
async def _turn(caller: Caller, question: np.ndarray, voiced_s: float, not_before: float) -> float | None:
    """Ask once (not before ``not_before``); voice to voice in ms, None if no answer came."""
    await caller.wait_for(lambda: caller.agent_state() == "listening", 60, "the agent to listen")
    await asyncio.sleep(max(PAUSE_S, not_before - time.monotonic()))
    asked = len(caller.speech_sent_at)
    caller.say(question)
    await caller.wait_for(lambda: len(caller.speech_sent_at) > asked, 5, "the question to leave")
    spoke_until = caller.speech_sent_at[asked] + voiced_s
    try:
        await caller.wait_for(lambda: caller.heard_since(spoke_until) >= 3, 20, "the answer")
    except AssertionError:
        return None
    heard = caller.first_heard_since(spoke_until)
    assert heard is not None
    await caller.wait_for(lambda: caller.agent_state() == "listening", 60, "the answer to end")
    return (heard - spoke_until) * 1000


def _last_prompt(emulators: ProviderEmulators) -> dict[str, int] | None:
    """Size of the newest chat request the LLM emulator received: what the agent sends per turn."""
    requests = [e for e in emulators.log("llm") if e.get("event") == "request"]
    if not requests:
        return None
    messages = requests[-1].get("messages") or []
    return {"messages": len(messages), "chars": len(json.dumps(messages))}


async def _wait_for_record(db: str, room: str, recording: bool, within: float = 120) -> dict[str, Any]:
    """The finished call's row (status no longer in progress) and its turns counted by role."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "select id, status, end_reason, duration_seconds, recording_path,"
                " recording_duration_seconds, summary is not null from calls where room_name = %s",
                (room,),
            ).fetchone()
            if (
                row is not None
                and row[1] not in ("in_progress", "ringing", "pending")
                and (row[4] or not recording)
            ):
                counts = dict(
                    conn.execute(
                        "select role, count(*) from call_turns where call_id = %s group by role", (row[0],)
                    ).fetchall()
                )
                latencies = conn.execute(
                    "select role, latency from call_turns where call_id = %s"
                    " and role in ('user', 'assistant') order by sequence",
                    (row[0],),
                ).fetchall()
                return {
                    "status": row[1],
                    "end_reason": row[2],
                    "duration_seconds": row[3],
                    "recording_path": row[4],
                    "recording_duration_seconds": row[5],
                    "has_summary": row[6],
                    "turns_by_role": counts,
                    "latencies": latencies,
                }
        if time.monotonic() > deadline:
            raise AssertionError(f"the call record of {room} was not completed within {within}s: {row}")
        await asyncio.sleep(1)


async def _run(minutes: float, turns_per_minute: float, real_time: bool, recording: bool) -> dict[str, Any]:
    n_turns = max(1, round(minutes * turns_per_minute))
    interval_s = 60 / turns_per_minute
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-long-"))
    question = read_pcm(synthesize(QUESTION, work / "question.wav"))
    voiced_s = last_voiced_s(question)
    # Long enough that neither the length limit nor its warning nor a silence re-prompt touches
    # the call, also when it runs in real time.
    max_call_s = max(7200, minutes * 60 * 2)
    with bench_server(), scratch_database() as db:
        with call_stack(
            work,
            db,
            worker_env={
                "SILENCE_REPROMPT_SECONDS": str(max_call_s),
                "MAX_CALL_SECONDS": str(max_call_s),
                "WORKER_DRAIN_TIMEOUT": "30",
                "RECORDING_ENABLED": str(recording).lower(),
                "RECORDINGS_DIR": str(work / "recordings"),
            },
            log_level="debug",  # LiveKit logs each commit and its preemptive lead at debug
        ) as stack:
            stack.emulators.script(stt_default=QUESTION)
            livekit = stack.livekit
            wpid, lpid = stack.worker.proc.pid, livekit.service.proc.pid
            await asyncio.sleep(5)  # the idle job process finishes its prewarm
            before = _sample(wpid, None, lpid)
            caller, room = await stack.call("bench-long")
            turns: list[dict[str, Any]] = []
            samples: list[dict[str, Any]] = []
            prompts: list[dict[str, Any]] = []
            checkpoint = warmup = max(1, n_turns // 10)
            stopped_early = None
            try:
                await caller.wait_for(lambda: caller.loud_frames, 30, "the greeting")
                await caller.wait_for(lambda: caller.agent_state() == "listening", 60, "the greeting to end")
                job_pid = _job_pid(wpid, livekit.port)
                t0 = time.monotonic()
                greeted = _sample(wpid, job_pid, lpid)
                regions_before: dict[str, int] = {}
                greeted.update(turn=0, sim_s=0.0, wall_s=0.0)
                prev = greeted
                misses = 0
                for k in range(1, n_turns + 1):
                    not_before = t0 + (k - 1) * interval_s if real_time else 0.0
                    v2v = await _turn(caller, question, voiced_s, not_before)
                    wall_s = time.monotonic() - t0
                    sim_s = wall_s if real_time else k * interval_s
                    now = _sample(wpid, job_pid, lpid)
                    now.update(turn=k, sim_s=round(sim_s, 1), wall_s=round(wall_s, 1))
                    samples.append(now)
                    turns.append(
                        {
                            "turn": k,
                            "sim_s": round(sim_s, 1),
                            "wall_s": round(wall_s, 1),
                            "voice_to_voice_ms": round(v2v, 1) if v2v is not None else None,
                            "job_cpu_ms": round((now["job_cpu_s"] - prev["job_cpu_s"]) * 1000, 1)
                            if "job_cpu_s" in now and "job_cpu_s" in prev
                            else None,
                            "livekit_cpu_ms": round((now["livekit_cpu_s"] - prev["livekit_cpu_s"]) * 1000, 1),
                        }
                    )
                    prev = now
                    if k == warmup:  # one-time allocations of the first turns are behind us
                        regions_before = _regions_kb(job_pid)
                    if k % checkpoint == 0 or k == n_turns:
                        prompts.append({"turn": k, **(_last_prompt(stack.emulators) or {})})
                        print(
                            f"turn {k}/{n_turns} sim {sim_s / 60:.1f} min wall {wall_s / 60:.1f} min"
                            f" job RSS {now.get('job_rss_mb')} MB v2v {turns[-1]['voice_to_voice_ms']} ms",
                            flush=True,
                        )
                    misses = misses + 1 if v2v is None else 0
                    if misses >= MISSES_IN_A_ROW:
                        stopped_early = f"{misses} unanswered questions in a row at turn {k}"
                        break
                regions = _region_growth(regions_before, _regions_kb(job_pid))
            finally:
                await caller.close()
            record = await _wait_for_record(db, room, recording)
            await asyncio.sleep(2)
            after = _sample(wpid, None, lpid)
            recording_file = work / "recordings" / (record["recording_path"] or "none")
            recording_bytes = recording_file.stat().st_size if recording_file.exists() else None

    # stored stage metrics, aligned with the questions (the first answer is the greeting)
    stored_rows = record.pop("latencies")
    users = [lat or {} for role, lat in stored_rows if role == "user"]
    answers = [lat or {} for role, lat in stored_rows if role == "assistant"][1:]
    answered = [t for t in turns if t["voice_to_voice_ms"] is not None]
    # Rows pair with turns only when every question was answered once; else leave them out.
    stored = list(zip(users, answers, strict=True)) if len(users) == len(answers) == len(turns) else []
    leads = [c.lead_ms for c in commits(work / "worker" / "bench-worker.log")][-len(answered) :]
    if len(leads) != len(answered):
        stored = []  # a commit without an answer: do not guess which turn is which
    for t, (user, answer), lead in zip(answered, stored, leads, strict=False):
        eou = user.get("end_of_utterance_ms")
        llm = answer.get("llm_ttft_ms")
        tts = answer.get("tts_ttfb_ms")
        t.update(
            end_of_utterance_ms=eou, llm_ttft_ms=llm, tts_ttfb_ms=tts, livekit_e2e_ms=answer.get("e2e_ms")
        )
        if eou is not None:
            injected = max(0.0, INJECTED_LLM_MS - lead) + INJECTED_TTS_MS  # as bench.turn_latency
            t["overhead_ms"] = round(t["voice_to_voice_ms"] - eou - injected, 1)
    asked = len(turns)
    expected = {"user": asked, "assistant": len(answered) + 1}  # + the greeting
    got = record["turns_by_role"]
    wall_total = turns[-1]["wall_s"] if turns else 0.0
    sim_total = turns[-1]["sim_s"] if turns else 0.0
    return {
        "benchmark": "long_call",
        "environment": environment(),
        "load_average": list(psutil.getloadavg()),
        "settings": {
            "minutes": minutes,
            "turns_per_minute": turns_per_minute,
            "turns_planned": n_turns,
            "real_time": real_time,
            "pause_between_turns_s": None if real_time else PAUSE_S,
            "latencies": LATENCIES,
            "question": QUESTION,
            "recording": recording,
            "max_call_seconds": max_call_s,
        },
        "stopped_early": stopped_early,
        "turns_asked": asked,
        "turns_answered": len(answered),
        "turns_warmup": max(1, n_turns // 10),
        "simulated_minutes": round(sim_total / 60, 2),
        "wall_minutes": round(wall_total / 60, 2),
        "acceleration": round(sim_total / wall_total, 2) if wall_total else None,
        "call_record": {
            **record,
            "expected_turns_by_role": expected,
            "all_turns_stored": all(got.get(r, 0) == n for r, n in expected.items()),
            "recording_bytes": recording_bytes,
            "recording_bytes_per_hour_of_call": round(
                recording_bytes / record["recording_duration_seconds"] * 3600
            )
            if recording_bytes and record["recording_duration_seconds"]
            else None,
        },
        "memory": {
            key: _growth(samples, key)
            for key in (
                "job_rss_mb",
                "job_anon_mb",
                "job_uss_mb",
                "job_pss_mb",
                "worker_tree_rss_mb",
                "worker_tree_pss_mb",
                "worker_main_rss_mb",
                "livekit_rss_mb",
            )
        },
        "job_mappings_growth": regions,
        "memory_before_call": before,
        "memory_after_greeting": greeted,
        "memory_after_call": after,
        "latency": {
            key: _drift(turns, key)
            for key in (
                "voice_to_voice_ms",
                "overhead_ms",
                "end_of_utterance_ms",
                "llm_ttft_ms",
                "tts_ttfb_ms",
                "job_cpu_ms",
                "livekit_cpu_ms",
            )
        },
        "llm_prompt_size": prompts,
        "turns": turns,
        "memory_samples": samples,
    }


def _summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for key, g in result["memory"].items():
        if not g:
            continue
        fit = g["fit_per_simulated_hour"] or {}
        warm = g["fit_per_simulated_hour_after_warmup"] or {}
        wall = g["fit_per_wall_hour"] or {}
        rows.append(
            [
                key,
                g["first_mb"],
                g["last_mb"],
                g["last_minus_first_per_simulated_hour_mb"],
                fit.get("slope"),
                warm.get("slope"),
                wall.get("slope"),
                g["fit_per_turn_kb"],
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60, help="simulated call length")
    parser.add_argument("--turns-per-minute", type=float, default=3, help="caller turns per minute")
    parser.add_argument("--real-time", action="store_true", help="pace turns on the wall clock")
    parser.add_argument("--no-recording", action="store_true", help="RECORDING_ENABLED=false")
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(_run(args.minutes, args.turns_per_minute, args.real_time, not args.no_recording))
    result["seconds"] = round(time.monotonic() - started, 1)
    name = (
        "long_call"
        + ("_real_time" if args.real_time else "")
        + ("_no_recording" if args.no_recording else "")
    )
    path = write_result(name, result)
    print(
        table(
            [
                "memory (MB)",
                "first",
                "last",
                "(last-first)/sim h",
                "fit /sim h",
                "fit /sim h warm",
                "fit /wall h",
                "fit kB/turn",
            ],
            _summary_rows(result),
        )
    )
    print()
    rows = []
    for key, d in result["latency"].items():
        if not d:
            continue
        fl = d["first_vs_last_10pct"] or {}
        rows.append(
            [
                key,
                d["percentiles"]["p50"],
                d["percentiles"]["p95"],
                fl.get("first"),
                fl.get("last"),
                (d["fit_per_simulated_hour"] or {}).get("slope"),
            ]
        )
    print(table(["per turn (ms)", "p50", "p95", "first 10% med", "last 10% med", "fit /sim h"], rows))
    rec = result["call_record"]
    prompt = result["llm_prompt_size"][-1] if result["llm_prompt_size"] else {}
    grew = ", ".join(f"{r['mapping']} {r['change_mb']:+} MB" for r in result["job_mappings_growth"][:4])
    print(f"\njob process, turn {result['turns_warmup']} to the last, resident change by mapping: {grew}")
    print(
        f"{result['turns_answered']}/{result['turns_asked']} turns answered; simulated"
        f" {result['simulated_minutes']} min in {result['wall_minutes']} min of wall time"
        f" (x{result['acceleration']}); call_turns {rec['turns_by_role']} expected"
        f" {rec['expected_turns_by_role']}: {'ok' if rec['all_turns_stored'] else 'MISMATCH'};"
        f" last prompt {prompt.get('messages')} messages / {prompt.get('chars')} chars;"
        f" recording {rec['recording_duration_seconds']} s, {rec['recording_bytes']} bytes."
        f"\nwrote {path} ({result['seconds']} s)"
    )


if __name__ == "__main__":
    main()
