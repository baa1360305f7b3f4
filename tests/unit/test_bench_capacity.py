"""bench.capacity's own arithmetic: the log it reads, the CPU it sums and when a level fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.capacity import (
    AGENTS,
    MODES,
    SPEECH_RMS,
    WorkerLog,
    cpu_used,
    loud_span_s,
    ratios,
    reference_span_s,
    verdict,
    writes_record,
)


def _line(message: str, **fields: Any) -> str:
    return json.dumps({"message": message, "timestamp": "2026-11-21T20:33:29.734711+00:00", **fields}) + "\n"


def test_worker_log_reads_commits_pids_and_process_starts_as_the_file_grows(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    committed_at = 1795293209.734711  # the timestamp above, as epoch seconds
    path.write_text(
        _line("initializing process", pid=7)
        + _line("user turn committed", room="call-a", pid=7, last_speaking_time=committed_at - 2.5)
        + '{"message": "half a line'
    )
    log = WorkerLog(path)
    log.read()
    assert log.initializing == {7} and not log.initialized
    assert len(log.commits) == 1
    assert round((log.commits[0].at - log.commits[0].last_speaking) * 1000) == 2500
    assert log.pids == {"call-a": {7}}
    with path.open("a") as f:  # the rest of the half-written line, then more
        f.write('", "pid": 1}\n' + _line("process initialized", pid=7))
    log.read()
    assert log.initialized == {7} and len(log.commits) == 1


def test_cpu_counts_a_process_born_in_the_window_from_zero_and_tells_reused_pids_apart() -> None:
    before = {(1, 100.0): 5.0, (2, 100.0): 1.0}
    after = {(1, 100.0): 6.5, (2, 200.0): 0.25, (3, 150.0): 2.0}  # pid 2 is a new process
    assert cpu_used(before, after) == 1.5 + 0.25 + 2.0


def test_loud_spans_of_received_and_reference_audio() -> None:
    assert loud_span_s([]) is None
    assert round(loud_span_s([2.0, 1.0, 1.5]) or 0, 3) == 1.01
    rate = 48000
    tone = (np.sin(np.arange(rate) / 10) * SPEECH_RMS * 4).astype(np.int16)  # 1 s, loud
    pcm = np.concatenate([np.zeros(rate // 2, np.int16), tone, np.zeros(rate // 4, np.int16)])
    assert round(reference_span_s(pcm.tobytes(), rate), 2) == 1.0


def _level(calls: int, p95: float, **extra: Any) -> dict[str, Any]:
    overhead = {"p50": p95 - 10, "p95": p95}
    return {
        "calls": calls,
        "answers_missed": 0,
        "answer_stretch_ms": {"p95": 20.0},
        "caller_receive_ratio_min": 1.0,
        "overhead_ms": overhead,
        "after_commit_ms": overhead,
        "cpu_per_call_second": {"jobs": 0.15, "worker": 0.2, "livekit": 0.05, "postgres": 0.01},
        "rss_per_call_mb": 300.0,
        "pss_per_call_mb": 150.0,
        **extra,
    }


def test_a_level_fails_on_overhead_late_audio_or_missed_answers() -> None:
    single = _level(1, 100.0)
    assert verdict(single, None) is None
    assert verdict(_level(2, 150.0), single) is None
    assert "overhead p95 150.1 ms > single-call 100.0 + 50 ms" in (verdict(_level(2, 150.1), single) or "")
    assert "fell behind real time" in (
        verdict(_level(2, 100.0, answer_stretch_ms={"p95": 101.0}), single) or ""
    )
    assert "this process" in (verdict(_level(2, 100.0, caller_receive_ratio_min=0.9), single) or "")
    assert "missed" in (verdict(_level(2, 100.0, answers_missed=1), single) or "")


def test_ratios_are_voicedesk_over_baseline_and_overhead_also_a_difference() -> None:
    cpu = {"jobs": 0.25, "worker": 0.3, "livekit": 0.05, "postgres": 0.02}
    voicedesk = _level(4, 120.0, cpu_per_call_second=cpu)
    baseline = _level(
        4, 100.0, cpu_per_call_second={"jobs": 0.2, "worker": 0.2, "livekit": 0.05, "postgres": 0.0}
    )
    r = ratios(voicedesk, baseline)
    assert (
        r["cpu_per_call_jobs"] == 1.25
        and r["cpu_per_call_worker"] == 1.5
        and r["cpu_per_call_livekit"] == 1.0
    )
    assert r["cpu_per_call_postgres"] is None  # nothing to divide by
    assert r["overhead_ms_p95_diff"] == 20.0 and r["overhead_ms_p95_ratio"] == 1.2


def test_each_mode_is_its_own_agent_and_only_modes_with_the_call_record_write_one() -> None:
    assert len(set(AGENTS.values())) == len(MODES)
    assert [m for m in MODES if writes_record(m)] == ["voicedesk", "no_retrieval", "no_recording"]
