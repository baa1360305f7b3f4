"""The call policy: who may reach the agent and when, read from CALL_POLICY_FILE."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from agent.call_policy import CallPolicy, PolicyFile, load_policy
from tests.support.processes import REPO_ROOT
from voicedesk.config import SettingsError

# A Wednesday, 15:00 UTC: 10:00 in New York (EST), midnight into Thursday in Tokyo.
WEDNESDAY_1500_UTC = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)
CALLER = "+15550100123"


def policy(**fields: Any) -> CallPolicy:
    return CallPolicy.model_validate(fields)


def at(day: str, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """A UTC moment in the week of Monday 2025-01-13 (UTC is the policy's default zone)."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return datetime(2025, 1, 13, tzinfo=UTC) + timedelta(
        days=days.index(day), hours=hh, minutes=mm, seconds=ss
    )


# --- allow and deny lists -----------------------------------------------------------------------------


def test_an_empty_policy_admits_every_call() -> None:
    decision = CallPolicy().decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=1000)
    assert decision.allowed and decision.rule == "open"


def test_deny_list_beats_allow_list() -> None:
    p = policy(allow=["+1555*"], deny=["+15550100123"])
    denied = p.decide("pstn_inbound", "+15550100123", WEDNESDAY_1500_UTC, live_calls=0)
    assert not denied.allowed and denied.rule == "deny_list"
    assert denied.message == p.messages.denied
    assert p.decide("pstn_inbound", "+15550100999", WEDNESDAY_1500_UTC, live_calls=0).allowed


def test_a_prefix_ending_in_star_matches_numbers_that_start_with_it() -> None:
    p = policy(deny=["+1900*"])
    assert p.decide("pstn_inbound", "+19005551234", WEDNESDAY_1500_UTC, 0).rule == "deny_list"
    assert p.decide("pstn_inbound", "+1900", WEDNESDAY_1500_UTC, 0).rule == "deny_list"
    # Only a leading match counts: the same digits further in are another country's number.
    assert p.decide("pstn_inbound", "+4419005551234", WEDNESDAY_1500_UTC, 0).allowed
    assert p.decide("pstn_inbound", "+15551900000", WEDNESDAY_1500_UTC, 0).allowed


def test_an_exact_entry_matches_only_that_number() -> None:
    p = policy(deny=["+15550100123"])
    assert p.decide("pstn_inbound", "+15550100123", WEDNESDAY_1500_UTC, 0).rule == "deny_list"
    assert p.decide("pstn_inbound", "+155501001234", WEDNESDAY_1500_UTC, 0).allowed


def test_an_allow_list_keeps_out_everyone_else_including_withheld_numbers() -> None:
    p = policy(allow=["+15550100123", "+4420*"])
    assert p.decide("pstn_inbound", "+15550100123", WEDNESDAY_1500_UTC, 0).allowed
    assert p.decide("pstn_inbound", "+442071234567", WEDNESDAY_1500_UTC, 0).allowed
    for number in ("+15550100124", "+33142000000", None, ""):
        decision = p.decide("pstn_inbound", number, WEDNESDAY_1500_UTC, 0)
        assert not decision.allowed and decision.rule == "allow_list", number
        assert decision.message == p.messages.denied


def test_a_withheld_number_is_not_on_the_deny_list() -> None:
    assert policy(deny=["+1900*"]).decide("pstn_inbound", None, WEDNESDAY_1500_UTC, 0).allowed


# --- business hours -----------------------------------------------------------------------------------


def test_weekday_hours_open_and_close_on_the_minute() -> None:
    p = policy(business_hours={"mon-fri": "09:00-17:00"})
    assert not p.open_at(at("mon", 8, 59, 59))
    assert p.open_at(at("mon", 9))
    assert p.open_at(at("wed", 16, 59, 59))
    assert not p.open_at(at("wed", 17))  # the end is exclusive
    assert p.open_at(at("fri", 12))
    assert not p.open_at(at("sat", 12))  # days not named are closed
    assert not p.open_at(at("sun", 12))


def test_a_day_range_may_wrap_around_the_week() -> None:
    p = policy(business_hours={"fri-mon": "10:00-14:00"})
    for day in ("fri", "sat", "sun", "mon"):
        assert p.open_at(at(day, 11)), day
    for day in ("tue", "wed", "thu"):
        assert not p.open_at(at(day, 11)), day


def test_single_days_and_lists_of_days() -> None:
    p = policy(business_hours={"mon-fri": "09:00-17:00", "sat": "10:00-14:00", "tue, thu": "18:00-20:00"})
    assert p.open_at(at("sat", 10))
    assert not p.open_at(at("sat", 14))
    assert p.open_at(at("tue", 19))
    assert not p.open_at(at("wed", 19))


def test_several_ranges_in_one_day_leave_the_gap_closed() -> None:
    p = policy(business_hours={"mon-fri": "09:00-12:00,13:00-17:00"})
    assert p.open_at(at("tue", 11, 59))
    assert not p.open_at(at("tue", 12))
    assert not p.open_at(at("tue", 12, 30))
    assert p.open_at(at("tue", 13))
    assert p.open_at(at("tue", 16, 59))
    assert not p.open_at(at("tue", 17))


def test_24_00_means_until_midnight() -> None:
    p = policy(business_hours={"fri": "20:00-24:00"})
    assert p.open_at(at("fri", 23, 59, 59))
    assert not p.open_at(at("sat", 0))  # Saturday is not listed
    all_day = policy(business_hours={"mon": "00:00-24:00"})
    assert all_day.open_at(at("mon", 0))
    assert all_day.open_at(at("mon", 23, 59, 59))
    assert not all_day.open_at(at("tue", 0))


def test_hours_are_read_in_the_policy_time_zone() -> None:
    hours = {"mon-fri": "09:00-17:00"}
    new_york = policy(timezone="America/New_York", business_hours=hours)
    tokyo = policy(timezone="Asia/Tokyo", business_hours=hours)
    assert new_york.open_at(WEDNESDAY_1500_UTC)  # 10:00 Wednesday in New York
    assert not tokyo.open_at(WEDNESDAY_1500_UTC)  # 00:00 Thursday in Tokyo

    decision = tokyo.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=0)
    assert not decision.allowed and decision.rule == "business_hours"
    assert "Asia/Tokyo" in decision.reason
    assert decision.message == tokyo.messages.closed
    assert new_york.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=0).allowed


def test_hours_follow_daylight_saving_time() -> None:
    p = policy(timezone="America/New_York", business_hours={"mon-fri": "09:00-17:00"})
    # 13:30 UTC is 08:30 in winter (EST, UTC-5) and 09:30 in summer (EDT, UTC-4).
    assert not p.open_at(datetime(2025, 1, 15, 13, 30, tzinfo=UTC))
    assert p.open_at(datetime(2025, 7, 16, 13, 30, tzinfo=UTC))
    # Either side of the change on Sunday 9 March 2025: same UTC hour, different local hour.
    assert not p.open_at(datetime(2025, 3, 7, 13, 0, tzinfo=UTC))  # Friday 08:00 EST
    assert p.open_at(datetime(2025, 3, 10, 13, 0, tzinfo=UTC))  # Monday 09:00 EDT


def test_a_moment_in_any_offset_means_the_same_instant() -> None:
    p = policy(timezone="America/New_York", business_hours={"mon-fri": "09:00-17:00"})
    tokyo_clock = WEDNESDAY_1500_UTC.astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo_clock.weekday() == 3  # already Thursday there
    assert p.open_at(tokyo_clock)


def test_deny_list_is_checked_before_hours_and_hours_before_capacity() -> None:
    p = policy(deny=["+1900*"], business_hours={"sat": "10:00-14:00"}, max_concurrent_calls=1)
    assert p.decide("pstn_inbound", "+19005551234", at("mon", 3), live_calls=5).rule == "deny_list"
    assert p.decide("pstn_inbound", CALLER, at("mon", 3), live_calls=5).rule == "business_hours"
    assert p.decide("pstn_inbound", CALLER, at("sat", 11), live_calls=5).rule == "max_concurrent_calls"


# --- capacity -----------------------------------------------------------------------------------------


def test_at_the_concurrency_limit_the_next_caller_is_refused() -> None:
    p = policy(max_concurrent_calls=3)
    full = p.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=3)
    assert not full.allowed and full.rule == "max_concurrent_calls"
    assert full.message == p.messages.busy
    assert "limit 3" in full.reason
    assert p.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=4).rule == "max_concurrent_calls"


def test_below_the_limit_the_caller_is_admitted() -> None:
    decision = policy(max_concurrent_calls=3).decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=2)
    assert decision.allowed and decision.rule == "open"


def test_an_unknown_call_count_does_not_lock_callers_out() -> None:
    decision = policy(max_concurrent_calls=1).decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, None)
    assert decision.allowed


# --- which calls it covers ----------------------------------------------------------------------------


def test_the_policy_covers_only_the_channels_it_names() -> None:
    closed_to_all = policy(deny=["+1*"], business_hours={}, max_concurrent_calls=1)
    web = closed_to_all.decide("web", None, WEDNESDAY_1500_UTC, live_calls=10)
    assert web.allowed and web.rule == "not_applicable"
    outbound = closed_to_all.decide("pstn_outbound", CALLER, WEDNESDAY_1500_UTC, live_calls=10)
    assert outbound.allowed and outbound.rule == "not_applicable"
    assert not closed_to_all.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=0).allowed

    both = policy(applies_to=["web", "pstn_inbound"], business_hours={})
    assert both.decide("web", None, WEDNESDAY_1500_UTC, 0).rule == "business_hours"


def test_custom_messages_are_spoken() -> None:
    p = policy(business_hours={}, messages={"closed": "We open at nine."})
    assert p.decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, 0).message == "We open at nine."
    assert p.messages.busy == CallPolicy().messages.busy  # the others keep their defaults


# --- the file -----------------------------------------------------------------------------------------


def test_the_repository_default_policy_loads() -> None:
    p = load_policy(REPO_ROOT / "call_policy.yaml")
    assert p.applies_to == ["pstn_inbound"]
    assert p.timezone == "America/New_York"
    assert p.max_concurrent_calls == 20
    # Open weekdays 08:00-20:00 and Saturday 09:00-13:00, Eastern time.
    assert p.open_at(datetime(2025, 1, 15, 13, 0, tzinfo=UTC))  # Wednesday 08:00 EST
    assert not p.open_at(datetime(2025, 1, 16, 1, 0, tzinfo=UTC))  # Wednesday 20:00 EST
    assert p.open_at(datetime(2025, 1, 18, 17, 59, tzinfo=UTC))  # Saturday 12:59 EST
    assert not p.open_at(datetime(2025, 1, 19, 16, 0, tzinfo=UTC))  # Sunday
    assert "Acme" in p.messages.closed


def test_no_file_configured_allows_everything() -> None:
    assert load_policy(None) == CallPolicy()
    assert PolicyFile(None).current() == CallPolicy()


def test_an_empty_file_is_the_admit_all_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing yet\n")
    assert load_policy(path) == CallPolicy()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('business_hours:\n  mon-fri: "9-5"\n', ["'9-5'", "HH:MM-HH:MM"]),
        ('business_hours:\n  mon-fri: "09:00-17:60"\n', ["HH:MM-HH:MM"]),
        ('business_hours:\n  mon-fry: "09:00-17:00"\n', ["unknown day", "mon-fry"]),
        ('business_hours:\n  weekdays: "09:00-17:00"\n', ["unknown day", "weekdays"]),
        ("timezone: Mars/Olympus_Mons\n", ["timezone", "Mars/Olympus_Mons"]),
        ("max_concurent_calls: 5\n", ["max_concurent_calls"]),
        ("messages:\n  goodbye: bye\n", ["goodbye"]),
        ("max_concurrent_calls: 0\n", ["max_concurrent_calls"]),
        ("deny: ['0800 123']\n", ["'0800 123'"]),
        ("applies_to: [fax]\n", ["applies_to"]),
        ("business_hours: [mon]\n", ["business_hours"]),
        ("deny: [unclosed\n", []),
    ],
    ids=[
        "bad-time",
        "bad-minute",
        "unknown-day-range",
        "unknown-day",
        "unknown-zone",
        "unknown-key",
        "unknown-message",
        "zero-cap",
        "bad-number",
        "unknown-channel",
        "hours-not-a-map",
        "broken-yaml",
    ],
)
def test_an_invalid_file_stops_start_up_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(SettingsError) as raised:
        load_policy(path)
    assert isinstance(raised.value, SystemExit) and raised.value.code == 2
    err = capsys.readouterr().err
    assert f"CALL_POLICY_FILE {path} is invalid" in err
    for word in words:
        assert word in err


def test_a_missing_file_stops_start_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(SettingsError):
        load_policy(path)
    assert f"CALL_POLICY_FILE {path} is invalid" in capsys.readouterr().err


def test_an_invalid_file_stops_policy_file_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("allow: nobody\n")
    with pytest.raises(SettingsError):
        PolicyFile(path)


# --- edits while running ------------------------------------------------------------------------------


def _edit(path: Path, data: dict[str, Any] | str) -> None:
    """Rewrite the file and move its mtime on, as an editor saving a change a second later would."""
    before = path.stat().st_mtime_ns
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_an_edit_applies_to_the_next_call_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"max_concurrent_calls": 5}))
    live = PolicyFile(path)
    assert live.current().decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=2).allowed

    _edit(path, {"max_concurrent_calls": 2, "deny": ["+1555*"]})
    decision = live.current().decide("pstn_inbound", CALLER, WEDNESDAY_1500_UTC, live_calls=0)
    assert not decision.allowed and decision.rule == "deny_list"
    assert live.current().max_concurrent_calls == 2

    _edit(path, "{}\n")
    assert live.current() == CallPolicy()


@pytest.mark.parametrize(
    "broken",
    [
        'business_hours:\n  mon-fri: "9-5"\n',
        'business_hours:\n  someday: "09:00-17:00"\n',
        "timezone: Atlantis/Capital\n",
        "max_concurrent_calls: many\n",
        "deny: [unclosed\n",
        "surprise: true\n",
    ],
    ids=["bad-time", "unknown-day", "unknown-zone", "bad-number", "broken-yaml", "unknown-key"],
)
def test_a_broken_edit_keeps_the_last_good_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    path = tmp_path / "policy.yaml"
    good = {"timezone": "America/New_York", "business_hours": {"mon-fri": "09:00-17:00"}, "deny": ["+1900*"]}
    path.write_text(yaml.safe_dump(good))
    live = PolicyFile(path)
    expected = live.current()

    _edit(path, broken)
    with caplog.at_level("ERROR", logger="voicedesk.agent.call_policy"):
        assert live.current() == expected  # neither opened nor closed by a typo
    assert any("keeping the previous one" in r.getMessage() for r in caplog.records)
    assert live.current() == expected  # and it stays so on later calls

    _edit(path, {**good, "deny": []})  # once fixed, the fix applies
    assert live.current().deny == []


def test_a_deleted_file_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"deny": ["+1900*"]}))
    live = PolicyFile(path)
    path.unlink()
    assert live.current().deny == ["+1900*"]


@pytest.mark.parametrize("entry", ["4155550100", "1900*", "+1 900*", "tel:+1900"])
def test_list_entries_must_be_e164_with_the_plus(entry: str) -> None:
    """Callers' numbers always arrive as +E.164: an entry without the + would never match."""
    with pytest.raises(ValidationError, match=r"E\.164"):
        CallPolicy.model_validate({"deny": [entry]})
