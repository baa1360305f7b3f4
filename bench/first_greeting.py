"""First greeting: a caller joins or answers, how long until the greeting is heard?

The real stack: LiveKit server, one agent worker, the token server with `EARLY_DISPATCH` (the
token request creates the room with the agent dispatched), Postgres, and the provider emulators
with a good cloud stack's latencies (TTS first byte 100 ms; the greeting's fixed opening comes
from the worker's greeting cache). ID tokens are RS256-signed by a local stand-in for Google's
key service. The web caller is LiveKit's Python rtc client; "heard" is the first agent audio
frame it receives above speech level. Two ways of joining, ``--calls`` times each:

- ``waiting``: the caller joins once the agent is in the room and its session started (as when
  a browser takes longer to connect than the agent to start);
- ``at_once``: the caller joins as soon as the token is returned (the agent is still starting).

Then phone calls over real SIP on loopback, ``--sip-calls`` times each (0: none): Redis,
livekit-sip with the trunks and dispatch rule `voicedesk sip setup` makes, and baresip (PCMU,
8 kHz) as the phone. "Heard" is where the phone's recording first holds speech (10 ms RMS
above speech level for at least 100 ms), timed on the monotonic clock the softphone's events
use; the audio there is checked to be the expected line.

- ``inbound``: the phone dials the company number. INVITE sent -> answered (baresip's
  ``CALL_ESTABLISHED``: livekit-sip rings until the agent has published its audio, then sends
  200 OK) -> greeting heard (the same cached greeting as the web callers').
- ``outbound``: an operator's ``POST /calls`` has the agent dial the phone, which answers after
  ringing ``OUTBOUND_ANSWER_DELAY_S``; answered -> the opener heard (it names the call's
  purpose, so it is synthesised live: no cache), and request -> the phone rings.

    python -m bench.first_greeting [--calls 20] [--sip-calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from livekit import api

import prompts
from bench.common import bench_server, environment, percentiles, scratch_database, table, write_result
from bench.stack import LATENCIES, call_stack
from tests.emulators.speech import synthesize_pcm
from tests.support.audio import find_speech, locate
from tests.support.livekit_server import LiveKitServer
from tests.support.livekit_sip import LiveKitSip, provision_trunks, start_livekit_sip
from tests.support.redis_server import RedisServer, start_redis
from tests.support.rtc_caller import Caller
from tests.support.softphone import RATE as PHONE_RATE
from tests.support.softphone import Softphone, SoftphoneError, start_softphone

COMPANY_NUMBER = "+15550100"  # our inbound number and outbound caller id
CALLER_NUMBER = "+15551234567"  # no profile: an unknown caller hears the impersonal greeting
CUSTOMER_NUMBER = "+15557654321"
PURPOSE = "your renewal next week"
OUTBOUND_ANSWER_DELAY_S = 1.0  # the phone rings this long before it is picked up
MATCH = 0.6  # locate() score of the expected line (the e2e tests' threshold)


async def _agent_ready(livekit: LiveKitServer, room: str, within: float = 20) -> None:
    """The agent is in ``room`` with its track published and its session started."""
    deadline = time.monotonic() + within
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
        while time.monotonic() < deadline:
            try:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            except api.TwirpError:  # the room is not there yet
                resp = None
            agents = (
                [p for p in resp.participants if p.kind == api.ParticipantInfo.Kind.AGENT] if resp else []
            )
            if agents and agents[0].tracks and "lk.agent.state" in agents[0].attributes:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"no agent ready in {room} within {within}s")


async def _call(token_url: str, id_token: str, livekit: LiveKitServer, *, wait: bool) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=token_url, timeout=10) as http:
        pressed = time.monotonic()
        resp = await http.post("/token", headers={"Authorization": f"Bearer {id_token}"})
        resp.raise_for_status()
    body = resp.json()
    room = api.TokenVerifier(livekit.api_key, livekit.api_secret).verify(body["participant_token"]).video.room
    if wait:
        await _agent_ready(livekit, room)
    caller = Caller()
    try:
        await caller.connect(body["server_url"], body["participant_token"])
        await caller.wait_for(lambda: caller.loud_frames, 20.0, "the greeting")
        joined, heard = caller.connected_at, caller.loud_frames[0]
        assert joined is not None
        return {"joined_to_heard_ms": (heard - joined) * 1000, "token_to_heard_ms": (heard - pressed) * 1000}
    finally:
        await caller.close()
        await asyncio.sleep(2.0)  # the job ends and a warm process is ready for the next call


# --- phone calls -------------------------------------------------------------------------------


async def _spoken(text: str) -> np.ndarray:
    """The first sentence of ``text`` as the TTS emulator says it, at the phone's rate: what the
    phone must have heard where its recording first holds speech."""
    sentence = text.split(". ")[0].split("? ")[0]
    return np.frombuffer(await synthesize_pcm(sentence, PHONE_RATE), dtype=np.int16)


async def _first_heard(
    phone: Softphone, call_id: str, line: np.ndarray, within: float = 20
) -> dict[str, float]:
    """When the phone first heard speech in ``call_id`` (monotonic), and how well it matches ``line``.

    The recording's first speech segment is the onset; once the line's length has been heard
    after it, the line is located around the onset: a low score or an offset far from 0 means
    the first sound was not the expected line.
    """
    deadline = time.monotonic() + within
    onset: float | None = None
    while time.monotonic() < deadline:
        try:
            heard = phone.heard(call_id)
        except SoftphoneError:  # the recording is claimed as the call comes up
            heard = None
        speech = find_speech(heard.samples, PHONE_RATE) if heard and heard.started_at else []
        onset = speech[0][0] if speech else None  # read again: later audio may extend a short burst
        if heard and onset is not None and heard.duration >= onset + line.size / PHONE_RATE + 0.3:
            start = max(0.0, onset - 0.3)
            offset, score = locate(heard.samples[int(start * PHONE_RATE) :], line, PHONE_RATE)
            return {"heard_at": heard.at(onset), "score": score, "offset_ms": (start + offset - onset) * 1000}
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{phone.name}: no greeting heard within {within}s (speech from {onset})")


async def _phone_calls_in(phone: Softphone, sip: LiveKitSip, line: np.ndarray) -> dict[str, float]:
    """The phone dials the company number: INVITE -> answered -> greeting heard."""
    invited = await asyncio.to_thread(phone.call, sip.uri(COMPANY_NUMBER))
    try:
        answered = await asyncio.to_thread(phone.wait_for, "CALL_ESTABLISHED", 30, since=invited)
        assert answered.call_id is not None
        heard = await _first_heard(phone, answered.call_id, line)
    finally:
        await asyncio.to_thread(phone.hangup)
        await asyncio.sleep(2.0)  # the job ends and a warm process is ready for the next call
    return {
        "invite_to_answered_ms": (answered.at - invited) * 1000,
        "answered_to_heard_ms": (heard["heard_at"] - answered.at) * 1000,
        "invite_to_heard_ms": (heard["heard_at"] - invited) * 1000,
        "match_score": round(heard["score"], 3),
        "match_offset_ms": round(heard["offset_ms"], 1),
    }


async def _agent_calls_out(
    customer: Softphone, http: httpx.AsyncClient, operator_token: str, line: np.ndarray
) -> dict[str, float]:
    """An operator has the agent call the phone: request -> ringing, answered -> opener heard."""
    requested = time.monotonic()
    resp = await http.post(
        "/calls",
        json={"phone_number": CUSTOMER_NUMBER, "purpose": PURPOSE},
        headers={"Authorization": f"Bearer {operator_token}"},
    )
    resp.raise_for_status()
    try:
        ringing = await asyncio.to_thread(customer.wait_for, "CALL_INCOMING", 30, since=requested)
        answered = await asyncio.to_thread(customer.wait_for, "CALL_ESTABLISHED", 30, since=requested)
        assert answered.call_id is not None
        heard = await _first_heard(customer, answered.call_id, line)
    finally:
        await asyncio.to_thread(customer.hangup)
        await asyncio.sleep(2.0)
    return {
        "request_to_ringing_ms": (ringing.at - requested) * 1000,
        "answered_to_heard_ms": (heard["heard_at"] - answered.at) * 1000,
        "match_score": round(heard["score"], 3),
        "match_offset_ms": round(heard["offset_ms"], 1),
    }


def _greeting_cache_files(directory: Path, within: float = 60) -> dict[str, int]:
    """Wait until the worker's greeting cache holds every fixed line in every voice, so the
    phone's greeting is timed from the cache as the web callers' is (it is the same line).
    Called on the main thread: the import registers LiveKit plugins, which must happen there."""
    from agent.greeting_cache import fixed_texts  # the agent's own list; a slow import
    from agent.settings import DEFAULT_GREETING_VOICES

    expected = len(fixed_texts()) * len(DEFAULT_GREETING_VOICES)
    deadline = time.monotonic() + within
    while (found := len(list(directory.glob("*.wav")))) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return {"expected": expected, "found": found}


def _live_tts(log: list[dict[str, Any]], since: float) -> dict[str, int]:
    """How many live syntheses (the session's streaming TTS) spoke the greeting or the opener
    after ``since``: a greeting played from the cache is not among them."""
    spoken = [
        e["text"]
        for e in log
        if e["event"] == "synthesize" and e.get("text") and e["api"] == "websocket" and e["t"] >= since
    ]
    greeting, opener = prompts.line("phone_greeting"), prompts.line("outbound_opener", purpose=PURPOSE)
    return {
        "greeting": sum(1 for text in spoken if greeting.startswith(text) or text.startswith(greeting)),
        "opener": sum(1 for text in spoken if opener.startswith(text) or text.startswith(opener)),
    }


def _summary(samples: list[dict[str, float]], measures: tuple[str, ...]) -> dict[str, Any]:
    return {
        **{m: percentiles([s[m] for s in samples]) for m in measures},
        "mismatched": sum(1 for s in samples if s["match_score"] < MATCH),
        "samples": samples,
    }


async def _run(calls: int, sip_calls: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="voicedesk-bench-greeting-"))
    redis: RedisServer | None = None
    sip: LiveKitSip | None = None
    phone = customer = None
    with bench_server(), scratch_database() as db, contextlib.ExitStack() as cleanup:
        if sip_calls:  # LiveKit keeps SIP trunks and dispatch rules in Redis
            redis = start_redis(work / "redis")
            cleanup.callback(redis.service.stop)
        stack = cleanup.enter_context(
            call_stack(
                work,
                db,
                worker_env={
                    "WORKER_NUM_IDLE_PROCESSES": "2",
                    "RECORDING_ENABLED": "false",
                    # The agent's limit (LiveKit gives a process 10 s to start); phone calls
                    # use the same cache: the 24 kHz audio is resampled to 8 kHz by livekit-sip.
                    "GREETING_CACHE_PREWARM_SECONDS": "8",
                },
                token_env={"EARLY_DISPATCH": "true"},
                redis_address=redis.address if redis else None,
            )
        )
        livekit, emulators, token_server = stack.livekit, stack.emulators, stack.token_server
        try:
            samples: dict[str, list[dict[str, float]]] = {"waiting": [], "at_once": []}
            await _call(token_server.url, stack.id_token("bench-warmup"), livekit, wait=True)
            for i in range(calls):
                for way in samples:
                    id_token = stack.id_token(f"bench-greeting-{way}-{i}")
                    samples[way].append(
                        await _call(token_server.url, id_token, livekit, wait=way == "waiting")
                    )
            sip_result: dict[str, Any] | None = None
            if sip_calls:
                assert redis is not None
                sip = start_livekit_sip(work / "livekit-sip", livekit, redis.address)
                phone = start_softphone(work, "phone", user=CALLER_NUMBER, sip_trace=False)
                customer = start_softphone(
                    work,
                    "customer",
                    user=CUSTOMER_NUMBER,
                    auto_answer=True,
                    answer_delay=OUTBOUND_ANSWER_DELAY_S,
                    sip_trace=False,
                )
                provisioned = await provision_trunks(
                    livekit, COMPANY_NUMBER, outbound_address=f"127.0.0.1:{customer.port}"
                )
                cache = _greeting_cache_files(work / "greetings")
                greeting = await _spoken(prompts.line("phone_greeting"))
                opener = await _spoken(prompts.line("outbound_opener", purpose=PURPOSE))
                operator = stack.id_token("bench-operator", operator=True)
                phone_samples: dict[str, list[dict[str, float]]] = {"inbound": [], "outbound": []}
                sip_started = time.time()  # the emulator's log is stamped with wall-clock time
                async with httpx.AsyncClient(base_url=token_server.url, timeout=15) as http:
                    await _phone_calls_in(phone, sip, greeting)  # warm-up, as for the web callers
                    await _agent_calls_out(customer, http, operator, opener)
                    for _ in range(sip_calls):
                        phone_samples["inbound"].append(await _phone_calls_in(phone, sip, greeting))
                        phone_samples["outbound"].append(
                            await _agent_calls_out(customer, http, operator, opener)
                        )
                sip_result = {
                    "settings": {
                        "calls": sip_calls,
                        "codec": "PCMU 8 kHz, ptime 20 ms (baresip 1.0.0)",
                        "outbound_answer_delay_s": OUTBOUND_ANSWER_DELAY_S,
                        "greeting_cache_files": cache,
                        # Speech the TTS emulator synthesised for the phone calls: the inbound
                        # greeting never (from the cache), the outbound opener every call.
                        "live_tts": _live_tts(emulators.log("tts"), sip_started),
                        "provisioning": provisioned,
                        "heard": "first speech in the phone's recording (10 ms RMS > 300 for >= 100 ms)",
                        "match_threshold": MATCH,
                    },
                    "inbound": _summary(
                        phone_samples["inbound"],
                        ("answered_to_heard_ms", "invite_to_answered_ms", "invite_to_heard_ms"),
                    ),
                    "outbound": _summary(
                        phone_samples["outbound"], ("answered_to_heard_ms", "request_to_ringing_ms")
                    ),
                }
        finally:
            for service in (phone, customer, sip and sip.service):
                if service is not None:
                    service.stop()
    result: dict[str, Any] = {
        "benchmark": "first_greeting",
        "environment": environment(),
        "settings": {
            "calls": calls,
            "sip_calls": sip_calls,
            "latencies": LATENCIES,
            "early_dispatch": True,
            "greeting_cache": True,
        },
        "results": {
            way: {
                "joined_to_heard_ms": percentiles([s["joined_to_heard_ms"] for s in runs]),
                "token_to_heard_ms": percentiles([s["token_to_heard_ms"] for s in runs]),
                "samples": runs,
            }
            for way, runs in samples.items()
        },
    }
    if sip_result is not None:
        result["sip"] = sip_result
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--sip-calls", type=int, default=10, help="phone calls each way; 0: none")
    args = parser.parse_args()
    result = asyncio.run(_run(args.calls, args.sip_calls))
    path = write_result("first_greeting", result)
    rows = [
        [
            way,
            r["joined_to_heard_ms"]["p50"],
            r["joined_to_heard_ms"]["p95"],
            r["token_to_heard_ms"]["p50"],
            r["token_to_heard_ms"]["p95"],
        ]
        for way, r in result["results"].items()
    ]
    print(table(["caller joins", "joined->heard p50", "p95", "token->heard p50", "p95"], rows))
    if "sip" in result:
        measures = {
            "inbound": [
                ("answered->heard", "answered_to_heard_ms"),
                ("INVITE->answered", "invite_to_answered_ms"),
                ("INVITE->heard", "invite_to_heard_ms"),
            ],
            "outbound": [
                ("answered->heard", "answered_to_heard_ms"),
                ("POST /calls->ringing", "request_to_ringing_ms"),
            ],
        }
        sip_rows = [
            [f"phone {way}", label, r[key]["n"], r[key]["p50"], r[key]["p95"]]
            for way, r in ((w, result["sip"][w]) for w in measures)
            for label, key in measures[way]
        ]
        print()
        print(table(["SIP call", "measure", "n", "p50 ms", "p95 ms"], sip_rows))
        for way in measures:
            if mismatched := result["sip"][way]["mismatched"]:
                print(
                    f"warning: {mismatched} {way} call(s) first heard something else than the expected line"
                )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
