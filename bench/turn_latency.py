"""Turn latency: voice to voice over a real room, and what voicedesk adds to it.

The real stack (LiveKit server, one agent worker, the token server with Firebase-style RS256
tokens, Postgres) with the provider emulators injecting a good cloud stack's latencies: STT final
350 ms after the end of speech, LLM first token 375 ms, TTS first byte 100 ms. A web caller
(LiveKit's Python rtc client) asks ``--turns`` questions in one call, each once the previous
answer has ended.

Per turn:
- voice to voice: the caller's last voiced audio leaving its microphone to the first loud frame
  of the answer it receives;
- the agent's own metrics, as the call record stores them (`call_turns.latency`): end of
  utterance (LiveKit's endpointing: from the end of speech to the turn being committed, which
  includes waiting for the STT's final transcript), STT delay, LLM time to first token, TTS time
  to first byte, and LiveKit's end-to-end figure (end of speech to the agent's playout start);
  and from the worker's log, how long before the commit preemptive generation started the LLM;
- overhead: voice to voice minus the endpointing delay and the injected provider latencies that
  lie after the commit. The STT's 350 ms is inside the endpointing wait; the LLM's 375 ms counts
  only for the part not already spent during that wait by preemptive generation; the TTS's
  100 ms always counts. Split by stage, the parts adding up to the overhead:
  - ``llm``: the LLM's own time beyond its injected latency, where it is on the path;
  - ``tts``: the TTS's time to first byte beyond its injected latency;
  - ``to_playout``: the rest of the agent's end-to-end figure (scheduling the reply, the audio
    pipeline up to the first frame played out);
  - ``transport``: voice to voice minus LiveKit's end-to-end figure: the caller's audio reaching
    the agent (and its VAD placing the end of speech), and the answer's audio reaching the caller.

    python -m bench.turn_latency [--turns 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.common import bench_server, environment, percentiles, scratch_database, table, write_result
from bench.stack import INJECTED_LLM_MS, INJECTED_TTS_MS, LATENCIES, call_stack
from tests.support.audio import SAMPLE_RATE, read_pcm, synthesize
from tests.support.rtc_caller import SPEECH_RMS, Caller

QUESTION = "What are your opening hours?"


def last_voiced_s(pcm: np.ndarray, frame: int = SAMPLE_RATE // 100) -> float:
    """Seconds from the start of ``pcm`` to the end of its last 10 ms above speech level."""
    usable = pcm[: len(pcm) // frame * frame].astype(np.float64).reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt(np.mean(usable**2, axis=1)) > SPEECH_RMS)
    return (int(loud[-1]) + 1) * frame / SAMPLE_RATE if loud.size else 0.0


async def _ask(caller: Caller, question: np.ndarray, voiced_s: float) -> tuple[float, float]:
    """Ask once; voice to voice in ms, and when the question's voice ended (wall clock, shared
    with the worker's log on this machine)."""
    await caller.wait_for(lambda: caller.agent_state() == "listening", 30, "the agent to listen")
    await asyncio.sleep(1.0)
    asked = len(caller.speech_sent_at)
    caller.say(question)
    await caller.wait_for(lambda: len(caller.speech_sent_at) > asked, 5, "the question to leave")
    spoke_until = caller.speech_sent_at[asked] + voiced_s
    await caller.wait_for(lambda: caller.heard_since(spoke_until) >= 3, 20, "the answer")
    heard = caller.first_heard_since(spoke_until)
    assert heard is not None
    return (heard - spoke_until) * 1000, spoke_until + (time.time() - time.monotonic())


OVERHEAD_STAGES = {
    "LLM beyond injected": "llm_beyond_injected_ms",
    "TTS beyond injected": "tts_beyond_injected_ms",
    "agent to playout": "to_playout_ms",
    "audio transport": "transport_ms",
}
SUMMARY_KEYS = (
    "voice_to_voice_ms",
    "end_of_utterance_ms",
    "stt_ms",
    "llm_ttft_ms",
    "tts_ttfb_ms",
    "livekit_e2e_ms",
    "preemptive_lead_ms",
    "injected_on_path_ms",
    "overhead_ms",
    *OVERHEAD_STAGES.values(),
    "audio_in_ms",
    "audio_out_ms",
)


@dataclass(frozen=True)
class Commit:
    """A committed caller turn as the worker logged it."""

    end_of_speech: float  # wall clock: LiveKit's VAD placed the end of speech here
    lead_ms: float  # preemptive generation started the LLM this long before the commit (0: after)


def commits(worker_log: Path) -> list[Commit]:
    """Every committed caller turn, in order (LiveKit logs them at debug level)."""
    found: list[Commit] = []
    for line in worker_log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "user turn committed":
            found.append(Commit(float(record["last_speaking_time"]), 0.0))
        elif record.get("message") == "using preemptive generation" and found:
            found[-1] = Commit(found[-1].end_of_speech, float(record["preemptive_lead_time"]) * 1000)
    return found


def turn_sample(
    v2v: float, spoke_until: float, user: dict[str, float], answer: dict[str, float], commit: Commit
) -> dict[str, float]:
    """One turn's figures and its overhead split into stages that add up to it."""
    eou, llm, tts = user["end_of_utterance_ms"], answer["llm_ttft_ms"], answer["tts_ttfb_ms"]
    e2e, lead = answer["e2e_ms"], commit.lead_ms
    llm_on_path = max(0.0, llm - lead)  # what of the LLM's wait the commit still had to wait for
    llm_injected_on_path = max(0.0, INJECTED_LLM_MS - lead)
    injected = llm_injected_on_path + INJECTED_TTS_MS
    audio_in = (commit.end_of_speech - spoke_until) * 1000
    return {
        "voice_to_voice_ms": round(v2v, 1),
        "end_of_utterance_ms": eou,
        "stt_ms": user.get("stt_ms", 0.0),
        "llm_ttft_ms": llm,
        "tts_ttfb_ms": tts,
        "livekit_e2e_ms": e2e,
        "preemptive_lead_ms": round(lead, 1),
        "injected_on_path_ms": round(injected, 1),
        "overhead_ms": round(v2v - eou - injected, 1),
        "llm_beyond_injected_ms": round(llm_on_path - llm_injected_on_path, 1),
        "tts_beyond_injected_ms": round(tts - INJECTED_TTS_MS, 1),
        "to_playout_ms": round(e2e - eou - llm_on_path - tts, 1),
        "transport_ms": round(v2v - e2e, 1),
        # transport split at the VAD's end of speech (wall clocks of two processes on one machine)
        "audio_in_ms": round(audio_in, 1),
        "audio_out_ms": round(v2v - e2e - audio_in, 1),
    }


def _stored_latency(db: str, room: str) -> list[tuple[str, dict[str, float]]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "select t.role, t.latency from call_turns t join calls c on c.id = t.call_id"
            " where c.room_name = %s and t.role in ('user', 'assistant') order by t.sequence",
            (room,),
        ).fetchall()
    return [(role, latency) for role, latency in rows]


async def _run(turns: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-turns-"))
    question = read_pcm(synthesize(QUESTION, work / "question.wav"))
    voiced_s = last_voiced_s(question)
    with bench_server(), scratch_database() as db:
        with call_stack(
            work,
            db,
            worker_env={"SILENCE_REPROMPT_SECONDS": "600", "MAX_CALL_SECONDS": "7200"},
            log_level="debug",  # LiveKit logs each commit and its preemptive lead at debug
        ) as stack:
            stack.emulators.script(stt_default=QUESTION)
            caller, room = await stack.call("bench-turns")
            try:
                await caller.wait_for(lambda: caller.loud_frames, 20, "the greeting")
                asked = [await _ask(caller, question, voiced_s) for _ in range(turns)]
                await caller.wait_for(lambda: caller.agent_state() == "listening", 30, "the last answer")
            finally:
                await caller.close()
            await asyncio.sleep(5)  # the call ends and its record is written
        stored = _stored_latency(db, room)

    users = [lat for role, lat in stored if role == "user"]
    answers = [lat for role, lat in stored if role == "assistant"][1:]  # the first is the greeting
    logged = commits(work / "worker" / "bench-worker.log")
    if not (len(users) >= turns and len(answers) >= turns and len(logged) >= turns == len(asked)):
        raise RuntimeError(
            f"cannot pair the turns: {len(asked)} asked, {len(users)} caller and {len(answers)} agent"
            f" turns stored, {len(logged)} commits logged"
        )
    samples = [
        turn_sample(v2v, spoke_until, user, answer, commit)
        for (v2v, spoke_until), user, answer, commit in zip(
            asked, users[-turns:], answers[-turns:], logged[-turns:], strict=True
        )
    ]
    return {
        "benchmark": "turn_latency",
        "environment": environment(),
        "settings": {
            "turns": turns,
            "latencies": LATENCIES,
            "question": QUESTION,
            "worker": "AGENT_MODE=pipeline, preemptive generation on, greeting cache on",
        },
        "turns_measured": len(samples),
        "overhead_stages": OVERHEAD_STAGES,
        "summary": {k: percentiles([s[k] for s in samples]) for k in SUMMARY_KEYS} if samples else {},
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(_run(args.turns))
    result["seconds"] = round(time.monotonic() - started, 1)
    path = write_result("turn_latency", result)
    rows = [[k, v["p50"], v["p95"], v["max"]] for k, v in result["summary"].items()]
    print(table(["per turn (ms)", "p50", "p95", "max"], rows))
    print(f"{result['turns_measured']} turns; wrote {path}")


if __name__ == "__main__":
    main()
