"""Rough figure: how many concurrent calls one worker holds on this machine (the full benchmark
of sessions per core comes later, in `bench/`'s pipeline benchmark).

One real worker (`python -m agent start`), a real LiveKit server and the provider emulators with a
good cloud stack's latencies (STT final 350 ms, LLM first token 375 ms, TTS first byte 100 ms).
For each N, N Python callers join at once and are greeted; then, for a few rounds, all of them
ask a question at the same moment. Recorded per reply: end of the question's audio -> first
loud frame of the agent's answer (so endpointing and the emulated provider latencies are
included), and the CPU of the worker's process tree while the calls run.

    python -m bench.worker_calls --calls 1 2 4 6 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from livekit import api

from bench.common import bench_server, environment, percentiles, scratch_database, table, write_result
from tests.support.agent_worker import start_worker
from tests.support.audio import SAMPLE_RATE, read_pcm, synthesize
from tests.support.livekit_server import LiveKitServer, start_livekit
from tests.support.provider_emulators import start_provider_emulators
from tests.support.rtc_caller import Caller

AGENT = "voicedesk-bench"
QUESTION = "What are your opening hours?"
LATENCIES = {"stt": {"first_ms": 350}, "llm": {"first_ms": 375}, "tts": {"first_ms": 100}}


def _token(livekit: LiveKitServer, room: str, identity: str) -> str:
    return (
        api.AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=AGENT)]))
        .to_jwt()
    )


def _cpu_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def _level(
    livekit: LiveKitServer, worker_pid: int, n: int, rounds: int, question: Any
) -> dict[str, Any]:
    callers = [Caller() for _ in range(n)]
    started = time.monotonic()
    await asyncio.gather(
        *(
            c.connect(livekit.url, _token(livekit, f"bench-{n}-{i}-{time.time_ns()}", f"caller-{i}"))
            for i, c in enumerate(callers)
        )
    )
    greeted: list[float] = []
    try:
        for c in callers:
            await c.wait_for(lambda c=c: c.heard_since(0) >= 5, 60, "the greeting")
            greeted.append((c.loud_frames[0] - c.connected_at) * 1000)  # type: ignore[operator]
        for c in callers:
            await c.wait_for(lambda c=c: c.agent_state() == "listening", 60, "the greeting to end")
        cpu0, t0 = _cpu_seconds(worker_pid), time.monotonic()
        replies: list[float] = []
        missed = 0
        for _ in range(rounds):
            asked = time.monotonic()
            ended = asked + len(question) / SAMPLE_RATE
            for c in callers:
                c.say(question)
            await asyncio.sleep(len(question) / SAMPLE_RATE)
            for c in callers:
                try:
                    await c.wait_for(lambda c=c, e=ended: c.heard_since(e + 0.2) >= 3, 20, "the answer")
                    first = next(t for t in c.loud_frames if t >= ended + 0.2)
                    replies.append((first - ended) * 1000)
                except AssertionError:
                    missed += 1
            for c in callers:
                await c.wait_for(lambda c=c: c.agent_state() == "listening", 30, "the answer to end")
            await asyncio.sleep(1.0)
        cpu = (_cpu_seconds(worker_pid) - cpu0) / (time.monotonic() - t0)
    finally:
        await asyncio.gather(*(c.close() for c in callers))
    await asyncio.sleep(3)  # let the jobs end before the next level
    return {
        "calls": n,
        "greeting_ms": percentiles(greeted),
        "reply_ms": percentiles(replies) if replies else None,
        "replies_missed": missed,
        "worker_cpu_cores": round(cpu, 2),
        "seconds": round(time.monotonic() - started, 1),
    }


async def _run(levels: list[int], rounds: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-workers-"))
    question = read_pcm(synthesize(QUESTION, work / "question.wav"))
    with bench_server(), scratch_database() as db_url:
        livekit = start_livekit(work / "livekit")
        emulators = start_provider_emulators(work / "emulators")
        worker = None
        try:
            emulators.script(stt_default=QUESTION)
            for provider, values in LATENCIES.items():
                emulators.set_latency(provider, **values)
            worker = start_worker(
                work / "worker",
                {
                    **livekit.env(),
                    **emulators.env(),
                    "DATABASE_URL": db_url,
                    "APP_ENV": "test",
                    "AGENT_NAME": AGENT,
                    "WORKER_MAX_CALLS": str(max(levels) + 1),
                    "WORKER_NUM_IDLE_PROCESSES": str(max(levels)),
                    "RECORDING_ENABLED": "false",
                    "SILENCE_REPROMPT_SECONDS": "600",
                    "CALL_JOURNAL_DIR": str(work / "journal"),
                },
                name="bench-worker",
                timeout=180,
            )
            results = [await _level(livekit, worker.proc.pid, n, rounds, question) for n in levels]
        finally:
            if worker is not None:
                worker.stop()
            emulators.stop()
            livekit.service.stop()
    return {"environment": environment(), "latencies": LATENCIES, "rounds": rounds, "levels": results}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4, 6])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(_run(args.calls, args.rounds))
    path = write_result("worker_calls", result)
    rows = [
        [
            r["calls"],
            r["greeting_ms"]["p50"],
            r["reply_ms"]["p50"] if r["reply_ms"] else "-",
            r["reply_ms"]["max"] if r["reply_ms"] else "-",
            r["replies_missed"],
            r["worker_cpu_cores"],
        ]
        for r in result["levels"]
    ]
    print(
        table(
            ["calls", "greeting p50 ms", "reply p50 ms", "reply max ms", "missed", "worker CPU (cores)"], rows
        )
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
