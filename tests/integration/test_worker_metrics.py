"""Metrics recorded in job processes reach the worker's /metrics, served by LiveKit's own code.

The worker process is this test process: prometheus_client was imported here before
PROMETHEUS_MULTIPROC_DIR was set, as in a real worker. Job processes are started the ways LiveKit
starts them (a forkserver that preloaded the metrics module, or spawn) after the variable is set.
/metrics is LiveKit's ``telemetry.http_server.HttpServer``, scraped over real HTTP.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from agent import metrics

# --- what a job process does during a call -------------------------------------------------------


def _finished_call() -> None:
    """A call that ran to the end: two turns, a provider error, a retry, a journal that drained."""
    assert values.ValueClass._multiprocess, "job process is not in multiprocess mode"
    metrics.call_started("web")
    metrics.observe_turn("user", {"end_of_utterance_ms": 420.0, "stt_ms": 180.0})
    metrics.observe_turn(
        "assistant", {"llm_ttft_ms": 380.0, "tts_ttfb_ms": 95.0, "e2e_ms": 900.0, "unknown_ms": 1.0}
    )
    metrics.observe_turn("tool")
    metrics.provider_error("deepgram", "timeout")
    metrics.db_write_retry()
    metrics.db_write_retry()
    metrics.set_journal_backlog(3)
    metrics.call_ended("web", "caller_hung_up")


def _call_in_progress(started: Event, release: Event) -> None:
    """A call still running: stays in the call until released (or killed)."""
    assert values.ValueClass._multiprocess, "job process is not in multiprocess mode"
    metrics.call_started("pstn_inbound")
    metrics.provider_error("deepgram", "timeout")
    metrics.set_journal_backlog(2)
    started.set()
    release.wait(30)
    metrics.set_journal_backlog(0)
    metrics.call_ended("pstn_inbound", "completed")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def multiproc_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What AgentServer.run() does before it starts job processes."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


@pytest.fixture(params=["forkserver", "spawn"])
def mp_context(
    request: pytest.FixtureRequest, multiproc_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[multiprocessing.context.BaseContext]:
    """LiveKit's start methods. The forkserver is a fresh one, started now (with the variable set)
    and preloading the metrics module, as LiveKit preloads plugins; the process-wide one may have
    been started earlier by another test without the variable."""
    if request.param == "spawn":
        yield multiprocessing.get_context("spawn")
        return
    server = multiprocessing.forkserver.ForkServer()
    for name in ("ensure_running", "get_inherited_fds", "connect_to_new_process", "set_forkserver_preload"):
        monkeypatch.setattr(multiprocessing.forkserver, name, getattr(server, name))
    server.set_forkserver_preload(["agent.metrics"])
    yield multiprocessing.get_context("forkserver")
    server._stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def metrics_url(multiproc_dir: Path) -> AsyncIterator[str]:
    # imported here, not at the top: job processes import this module, and need not load LiveKit
    from livekit.agents.telemetry.http_server import HttpServer

    server = HttpServer("127.0.0.1", _free_port())
    await server.start()
    yield f"http://127.0.0.1:{server.port}/metrics"
    await server.aclose()


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, keyed by (name, sorted labels without pid)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            samples[(sample.name, labels)] = sample.value
    return samples


def run(ctx: multiprocessing.context.BaseContext, target: object, *args: object) -> multiprocessing.Process:
    proc = ctx.Process(target=target, args=args)  # type: ignore[attr-defined]
    proc.start()
    return proc


# --- tests ---------------------------------------------------------------------------------------


async def test_job_process_metrics_reach_livekit_metrics_endpoint(
    mp_context: multiprocessing.context.BaseContext, metrics_url: str, multiproc_dir: Path
) -> None:
    started, release = mp_context.Event(), mp_context.Event()  # type: ignore[attr-defined]
    live = run(mp_context, _call_in_progress, started, release)
    assert started.wait(30)
    done = run(mp_context, _finished_call)
    done.join(30)
    assert done.exitcode == 0

    m = await scrape(metrics_url)
    assert m[("voicedesk_active_calls", ())] == 1  # only the call still in progress
    assert m[("voicedesk_calls_total", (("channel", "web"), ("end_reason", "caller_hung_up")))] == 1
    assert ("voicedesk_calls_total", (("channel", "pstn_inbound"), ("end_reason", "completed"))) not in m
    assert m[("voicedesk_turns_total", (("role", "user"),))] == 1
    assert m[("voicedesk_turns_total", (("role", "assistant"),))] == 1
    assert m[("voicedesk_turns_total", (("role", "tool"),))] == 1
    # counted in two processes, summed
    assert m[("voicedesk_provider_errors_total", (("kind", "timeout"), ("provider", "deepgram")))] == 2
    assert m[("voicedesk_db_write_retries_total", ())] == 2
    for stage, seconds in [
        ("end_of_utterance", 0.42),
        ("stt", 0.18),
        ("llm_ttft", 0.38),
        ("tts_ttfb", 0.095),
        ("e2e", 0.9),
    ]:
        assert m[("voicedesk_turn_latency_seconds_count", (("stage", stage),))] == 1
        assert m[("voicedesk_turn_latency_seconds_sum", (("stage", stage),))] == pytest.approx(seconds)
    e2e = {"0.75": 0.0, "1.0": 1.0, "5.0": 1.0, "+Inf": 1.0}
    for le, count in e2e.items():
        assert m[("voicedesk_turn_latency_seconds_bucket", (("le", le), ("stage", "e2e")))] == count
    assert m[("voicedesk_turn_latency_seconds_bucket", (("le", "0.05"), ("stage", "e2e")))] == 0
    # livemax over live processes; the finished process's file stays until it is reaped
    assert m[("voicedesk_journal_backlog", ())] == 3
    assert metrics.reap_dead_processes() == 1
    assert (await scrape(metrics_url))[("voicedesk_journal_backlog", ())] == 2

    # the worker process's journal replayer reports the whole journal directory
    metrics.set_journal_backlog(7)
    assert (await scrape(metrics_url))[("voicedesk_journal_backlog", ())] == 7
    metrics.set_journal_backlog(0)

    # a job process that dies mid-call (no call_ended) stops counting once reaped
    assert live.pid is not None
    os.kill(live.pid, signal.SIGKILL)
    live.join(30)
    assert (await scrape(metrics_url))[("voicedesk_active_calls", ())] == 1
    assert metrics.reap_dead_processes() == 1
    m = await scrape(metrics_url)
    # 0, or no series at all when no live process has the gauge (under spawn nothing else does)
    assert m.get(("voicedesk_active_calls", ()), 0) == 0
    assert m[("voicedesk_journal_backlog", ())] == 0  # this (worker) process's value
    # counters of dead processes are kept
    assert m[("voicedesk_provider_errors_total", (("kind", "timeout"), ("provider", "deepgram")))] == 2
    assert m[("voicedesk_calls_total", (("channel", "web"), ("end_reason", "caller_hung_up")))] == 1


async def test_a_call_that_ends_normally_leaves_no_active_call(multiproc_dir: Path, metrics_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    proc = run(ctx, _call_in_progress, started, release)
    assert started.wait(30)
    assert (await scrape(metrics_url))[("voicedesk_active_calls", ())] == 1
    release.set()
    proc.join(30)
    assert proc.exitcode == 0
    m = await scrape(metrics_url)
    assert m[("voicedesk_active_calls", ())] == 0
    assert m[("voicedesk_calls_total", (("channel", "pstn_inbound"), ("end_reason", "completed")))] == 1


def test_server_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROMETHEUS_PORT", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics.server_options(metrics.MetricsSettings(_env_file=None)) == {}

    monkeypatch.setenv("PROMETHEUS_PORT", "9464")
    assert metrics.server_options(metrics.MetricsSettings(_env_file=None)) == {
        "prometheus_port": 9464,
        "prometheus_multiproc_dir": "/var/tmp/voicedesk/prometheus/9464",
    }
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    options = metrics.server_options(metrics.MetricsSettings(_env_file=None))
    assert options["prometheus_multiproc_dir"] == str(tmp_path / "9464")
    # the keyword arguments AgentServer really takes
    from livekit.agents import AgentServer

    server = AgentServer(ws_url="ws://127.0.0.1:1", api_key="k", api_secret="s", **options)
    assert server._prometheus_port == 9464
    assert server._prometheus_multiproc_dir == str(tmp_path / "9464")
