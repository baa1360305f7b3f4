"""Run-time state shared by every emulated provider: scripts, latencies, faults and the log.

One instance lives in the server process; the control API mutates it while tests run, so a
test in another process can script what the "caller says" and what the "LLM answers".
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

# "openai_stt", "openai_tts" and "llm_fallback" are the fallback providers: their own faults and
# latencies, so a test can fail a primary while its fallback answers.
PROVIDERS = ("stt", "llm", "tts", "embeddings", "realtime", "openai_stt", "openai_tts", "llm_fallback")
FAULT_KINDS = ("http_500", "stall", "disconnect")
HEARD_WHOLE = 0.85  # share of a scripted utterance's voiced audio that counts as all of it
LOG_LIMIT = 2000  # bounded: benchmarks run long calls


@dataclass
class Latency:
    """Delay before the first result and the streaming rate of one provider.

    ``first_ms``: STT final after the caller's last voiced audio, LLM first token, TTS first
    byte, embeddings response. ``rate``: LLM tokens per second, TTS multiple of real time
    (0 = unthrottled). STT only: ``silence_ms`` is how long the caller must be quiet to end
    an utterance (400 ms: espeak-ng pauses ~300 ms between sentences); the final goes out at
    ``max(silence_ms, first_ms)`` after speech, so benchmarks wanting an exact 350 ms set
    ``silence_ms`` <= 350. ``threshold`` is the RMS (full scale 1.0) that counts as speech.
    """

    first_ms: float = 0.0
    rate: float = 0.0
    silence_ms: float = 400.0
    threshold: float = 0.01


@dataclass
class Fault:
    kind: str
    remaining: int  # -1 = every request from now on
    after: int = 1  # "disconnect" on a stream: chunks sent before the cut (TTS audio chunks)


@dataclass
class EmulatorState:
    stt_script: deque[str] = field(default_factory=deque)
    llm_script: list[dict[str, Any]] = field(default_factory=list)
    stt_default: str = "hello"
    # How long saying each scripted STT line takes (voiced seconds): a provider that hears less
    # of the utterance transcribes only the words it heard (see ``heard_part``).
    stt_lengths: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Latency] = field(default_factory=lambda: {p: Latency() for p in PROVIDERS})
    faults: dict[str, Fault] = field(default_factory=dict)
    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        self.stt_script.clear()
        self.llm_script.clear()
        self.stt_default = "hello"
        self.stt_lengths.clear()
        self.latency = {p: Latency() for p in PROVIDERS}
        self.faults.clear()
        self.entries.clear()

    # scripts -------------------------------------------------------------------------------
    def add_script(self, body: dict[str, Any]) -> None:
        for text in body.get("stt") or []:
            self.stt_script.append(str(text))
        for item in body.get("llm") or []:
            self.llm_script.append({"text": item} if isinstance(item, str) else dict(item))
        if "stt_default" in body:
            self.stt_default = str(body["stt_default"])
        for text, seconds in (body.get("stt_lengths") or {}).items():
            if float(seconds) <= 0:
                raise ValueError(f"stt_lengths[{text!r}] must be positive, got {seconds!r}")
            self.stt_lengths[str(text)] = float(seconds)

    def heard_part(self, transcript: str, heard_s: float) -> str:
        """What a provider transcribes of a scripted line when it heard ``heard_s`` voiced
        seconds of it: the whole line once it heard nearly all of it (85 %), else the trailing
        share of its words (a provider that joins mid-utterance hears the end)."""
        length = self.stt_lengths.get(transcript)
        if length is None or heard_s >= HEARD_WHOLE * length:
            return transcript
        tokens = words(transcript)
        kept = max(0, min(len(tokens), round(len(tokens) * heard_s / length)))
        return " ".join(tokens[len(tokens) - kept :])

    def next_transcript(self) -> tuple[str, bool]:
        """The next scripted transcript (or the default) and whether it came from the script."""
        if self.stt_script:
            return self.stt_script.popleft(), True
        return self.stt_default, False

    def next_llm_item(self, last_user_text: str, *, consume: bool = True) -> dict[str, Any] | None:
        """First scripted answer whose optional ``when`` occurs in the last user message.

        ``when`` lets a test pin an answer to a question, so a side request (a summary, a
        cancelled preemptive generation) cannot eat the answer meant for the conversation.
        ``consume=False`` (a faulted request) leaves it for the retry or the fallback LLM.
        """
        haystack = last_user_text.lower()
        for i, item in enumerate(self.llm_script):
            when = item.get("when")
            if when is None or str(when).lower() in haystack:
                return self.llm_script.pop(i) if consume else dict(item)
        return None

    # latency and faults --------------------------------------------------------------------
    def set_latency(self, body: dict[str, Any]) -> None:
        """Accept ``{"provider": "llm", "first_ms": 375}`` or ``{"llm": {...}, "stt": {...}}``."""
        updates = {body["provider"]: body} if "provider" in body else body
        for provider, values in updates.items():
            _check_provider(provider)
            current = asdict(self.latency[provider])
            current.update({k: float(v) for k, v in values.items() if k in current})
            self.latency[provider] = Latency(**current)

    def set_fault(self, body: dict[str, Any]) -> None:
        provider = body["provider"]
        _check_provider(provider)
        kind = body.get("kind")
        count = int(body.get("count", 1))
        after = int(body.get("after", 1))
        if after < 1:
            raise ValueError(f"after must be at least 1, got {after}")
        if kind in (None, "none") or count == 0:
            self.faults.pop(provider, None)
            return
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}, expected one of {FAULT_KINDS}")
        self.faults[provider] = Fault(kind, count, after)

    def take_fault(self, provider: str, kinds: tuple[str, ...] = FAULT_KINDS) -> str | None:
        """The fault that applies to this request/connection, consuming one use of it.

        ``kinds`` limits which faults this point can consume (a WebSocket handshake can only
        fail with ``http_500``; stalls and drops happen later, per synthesis context).
        """
        fault = self.take(provider, kinds)
        return fault.kind if fault else None

    def take(self, provider: str, kinds: tuple[str, ...] = FAULT_KINDS) -> Fault | None:
        """``take_fault``, with the fault's parameters."""
        with self._lock:
            fault = self.faults.get(provider)
            if fault is None or fault.kind not in kinds:
                return None
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self.faults[provider]
            return Fault(fault.kind, fault.remaining, fault.after)

    # log -------------------------------------------------------------------------------------
    def record(self, provider: str, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"t": time.time(), "provider": provider, "event": event, **fields}
        self.entries.append(entry)
        return entry

    def log(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries if provider is None or e["provider"] == provider]

    def snapshot(self) -> dict[str, Any]:
        return {
            "stt_script": list(self.stt_script),
            "llm_script": list(self.llm_script),
            "stt_default": self.stt_default,
            "stt_lengths": dict(self.stt_lengths),
            "latency": {p: asdict(v) for p, v in self.latency.items()},
            "faults": {p: asdict(f) for p, f in self.faults.items()},
        }


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}, expected one of {PROVIDERS}")


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)
