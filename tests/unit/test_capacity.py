"""The load a worker reports to LiveKit for its calls in hand, and the settings that shape it."""

from __future__ import annotations

import pytest

from agent.capacity import LOAD_THRESHOLD, CallCapacity
from agent.settings import AgentSettings
from tests.unit.test_agent_settings import VALID
from voicedesk.config import SettingsError, load_settings

# livekit-server routes a job only while some available worker is below this (agents.target_load).
LIVEKIT_TARGET_LOAD = 0.7


def test_loads_stay_routable_until_the_overflow_slots_are_taken() -> None:
    capacity = CallCapacity("voicedesk", max_calls=4, overflow_calls=1)
    loads = [capacity.load_for(n) for n in range(7)]
    assert loads == sorted(loads)  # more calls never look lighter
    # With room, and in the overflow slots: available, and LiveKit still routes calls to it.
    assert all(load < LIVEKIT_TARGET_LOAD and load < LOAD_THRESHOLD for load in loads[:5])
    # A worker with room always looks lighter than one that is full (LiveKit weighs by 1 - load).
    assert max(loads[:4]) < loads[4]
    # Overflow slots taken: full, LiveKit offers it nothing.
    assert loads[5] >= LOAD_THRESHOLD and loads[6] >= LOAD_THRESHOLD


def test_no_overflow_slots_means_full_at_max_calls() -> None:
    capacity = CallCapacity("voicedesk", max_calls=2, overflow_calls=0)
    assert capacity.load_for(1) < LOAD_THRESHOLD <= capacity.load_for(2)


def test_overflow_and_drain_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in VALID.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORKER_OVERFLOW_CALLS", "2")
    monkeypatch.setenv("WORKER_DRAIN_TIMEOUT", "1900")
    settings = load_settings(AgentSettings)
    assert (settings.worker_overflow_calls, settings.worker_drain_timeout) == (2, 1900)
    monkeypatch.setenv("WORKER_OVERFLOW_CALLS", "-1")
    with pytest.raises(SettingsError):
        load_settings(AgentSettings)
    assert "WORKER_OVERFLOW_CALLS" in capsys.readouterr().err
