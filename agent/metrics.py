"""Prometheus metrics of the worker: calls, turns, latency, provider errors, journal backlog.

Calls run in job processes, but LiveKit serves ``/metrics`` from the worker process. LiveKit's
``AgentServer(prometheus_port=..., prometheus_multiproc_dir=...)`` exports
``PROMETHEUS_MULTIPROC_DIR`` (and empties the directory) when the worker starts, before it forks
any job process, and its ``/metrics`` handler then merges every process's files with
``prometheus_client``'s ``MultiProcessCollector``. prometheus_client picks its storage when it is
first imported, so job processes (started after the variable is set) write their values to
memory-mapped files there; the worker process itself imported it earlier and keeps in-memory
values that /metrics never shows. So everything here is recorded in job processes, except the
journal backlog, which the worker process's journal replayer sets: that one gauge is rebuilt with
file-backed storage there (see :func:`_backlog_gauge`).

Gauges only count processes still alive (``livesum``/``livemax``). LiveKit never tells prometheus_client
that a job process died, so a crashed process's ``+1`` active call would stay forever;
:func:`reap_dead_processes` (called from ``prewarm``) drops live-gauge files of dead processes.
Counters and histograms of dead processes are kept, as they must be.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import mark_process_dead
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# 50 ms ... 5 s: a good voice turn is under 1 s end to end, a bad one a few seconds
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

# the keys CallRecord stores per turn (milliseconds) -> the histogram's stage label
LATENCY_STAGES = {
    "end_of_utterance_ms": "end_of_utterance",
    "stt_ms": "stt",
    "llm_ttft_ms": "llm_ttft",
    "tts_ttfb_ms": "tts_ttfb",
    "e2e_ms": "e2e",
}

ACTIVE_CALLS = Gauge(
    "voicedesk_active_calls", "Calls in progress on this worker.", multiprocess_mode="livesum"
)
CALLS = Counter("voicedesk_calls", "Calls ended, by channel and end reason.", ["channel", "end_reason"])
TURNS = Counter("voicedesk_turns", "Conversation turns stored, by role.", ["role"])
TURN_LATENCY = Histogram(
    "voicedesk_turn_latency_seconds",
    "Per-turn latency by pipeline stage.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "voicedesk_provider_errors", "Errors from AI providers, by provider and kind.", ["provider", "kind"]
)
_BACKLOG_DOC = "Call-record writes waiting in the on-disk journal for the database."
# livemax: the worker process reports the whole journal directory, a call only its own journal
JOURNAL_BACKLOG = Gauge("voicedesk_journal_backlog", _BACKLOG_DOC, multiprocess_mode="livemax")
DB_WRITE_RETRIES = Counter("voicedesk_db_write_retries", "Call-record database writes retried.")


def call_started(channel: str) -> None:
    ACTIVE_CALLS.inc()


def call_ended(channel: str, end_reason: str) -> None:
    """Once per call_started, also for calls that end in error (the gauge must come back down)."""
    ACTIVE_CALLS.dec()
    CALLS.labels(channel=channel, end_reason=end_reason).inc()


def observe_turn(role: str, latency_ms: dict[str, float] | None = None) -> None:
    """Count a turn and observe its latencies (CallRecord's keys, milliseconds; others ignored)."""
    TURNS.labels(role=role).inc()
    for key, value in (latency_ms or {}).items():
        stage = LATENCY_STAGES.get(key)
        if stage is not None and value is not None and value >= 0:
            TURN_LATENCY.labels(stage=stage).observe(value / 1000)


def provider_error(provider: str, kind: str) -> None:
    """``provider``: openai, deepgram, elevenlabs, ...; ``kind``: a small fixed set (timeout, 5xx, ...)."""
    PROVIDER_ERRORS.labels(provider=provider, kind=kind).inc()


_backlog_twins: dict[str, Gauge] = {}


def _backlog_gauge() -> Gauge:
    """JOURNAL_BACKLOG in a job process; in the worker process, a twin stored in the directory.

    The worker process imported prometheus_client before LiveKit set PROMETHEUS_MULTIPROC_DIR, so
    its metrics live in memory (or, if the variable was set in the environment, in files of the
    parent directory), where LiveKit's /metrics never looks. The journal replayer runs there, so
    its gauge is rebuilt, once per directory and after the worker emptied it, with storage in the
    directory LiveKit reads, outside the default registry.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or multiprocessing.parent_process() is not None:
        return JOURNAL_BACKLOG
    if directory not in _backlog_twins:
        saved = values.ValueClass
        values.ValueClass = values.MultiProcessValue()
        try:
            _backlog_twins[directory] = Gauge(
                "voicedesk_journal_backlog", _BACKLOG_DOC, multiprocess_mode="livemax", registry=None
            )
        finally:
            values.ValueClass = saved
    return _backlog_twins[directory]


def set_journal_backlog(n: int) -> None:
    """Records waiting in the on-disk journal: the directory's total from the worker process's
    replayer, or a call's own journal from its job process; /metrics shows the largest."""
    _backlog_gauge().set(n)


def db_write_retry() -> None:
    DB_WRITE_RETRIES.inc()


def reap_dead_processes(path: str | None = None) -> int:
    """Remove live-gauge files of processes that no longer exist; returns how many pids.

    Without this, a job process that crashed mid-call would count as an active call until the
    worker restarts. Cheap (one directory listing); call it from ``prewarm``.
    """
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return 0
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = Path(name).stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            pids.add(int(pid))
    for pid in pids:
        mark_process_dead(pid, path)
    return len(pids)


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    prometheus_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the worker's Prometheus /metrics endpoint; unset: no endpoint.",
        examples=[9464],
    )
    prometheus_multiproc_dir: Path = Field(
        default=Path("/var/tmp/voicedesk/prometheus"),
        description="Where job processes keep their metric files; the worker empties its own "
        "subdirectory (named after the port) when it starts.",
        examples=["/var/tmp/voicedesk/prometheus"],
    )


def server_options(settings: MetricsSettings | None = None) -> dict[str, Any]:
    """The ``AgentServer(...)`` keyword arguments for /metrics; empty when PROMETHEUS_PORT is unset.

    The directory gets a subdirectory per port, so two workers on one machine never empty each
    other's files. Pure: it runs again in every job process that imports the server module.
    """
    if settings is None:
        from voicedesk.config import load_settings

        settings = load_settings(MetricsSettings)
    if settings.prometheus_port is None:
        return {}
    return {
        "prometheus_port": settings.prometheus_port,
        "prometheus_multiproc_dir": str(settings.prometheus_multiproc_dir / str(settings.prometheus_port)),
    }
