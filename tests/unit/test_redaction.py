"""Redaction of e-mail, phone, card and national-id numbers, as they come from speech-to-text."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from voicedesk.redaction import RedactingFilter, RedactionSettings, luhn_valid, redact, redact_value

POSITIVE = [
    # e-mail, written and spoken
    ("write to ann.lee+billing@example.co.uk please", "write to [email] please"),
    ("it's john_smith99@gmail.com.", "it's [email]."),
    ("ann dot lee at example dot com", "[email]"),
    ("my email is john at acme dot io thanks", "my email is [email] thanks"),
    ("john at gmail.com", "[email]"),
    # payment cards (Luhn-valid), as read aloud or typed
    ("My card is 4111 1111 1111 1111 thanks", "My card is [card] thanks"),
    ("4111-1111-1111-1111", "[card]"),
    ("4111111111111111", "[card]"),
    ("mastercard 5555 5555 5555 4444", "mastercard [card]"),
    ("Amex 3782 822463 10005.", "Amex [card]."),
    ("diners 3056 930902 5904", "diners [card]"),
    ("19 digits 6011 1111 1111 1111 003", "19 digits [card]"),
    ("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "[card]"),
    ("card 4111 1111 1111 1111 expiry 12/27", "card [card] expiry 12/27"),
    ("4111 1111 1111 1111 12/27", "[card] 12/27"),
    # phones: E.164 and national layouts
    ("call +1 415 555 0100 now", "call [phone] now"),
    ("+14155550100", "[phone]"),
    ("+1 (415) 555-0100", "[phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("+44 (0)20 7946 0958", "[phone]"),
    ("+49 30 12345678", "[phone]"),
    ("(415) 555-0100", "[phone]"),
    ("my number is (415)555-0100.", "my number is [phone]."),
    ("415-555-0100", "[phone]"),
    ("415 555 0100", "[phone]"),
    ("415.555.0100", "[phone]"),
    ("1 415 555 0100", "[phone]"),
    ("4155550100", "[phone]"),
    ("020 7946 0958", "[phone]"),
    ("07700 900123", "[phone]"),
    ("0161 496 0000", "[phone]"),
    ("01 23 45 67 89", "[phone]"),
    ("0044 20 7946 0958", "[phone]"),
    ("4 1 5 5 5 5 0 1 0 0", "[phone]"),
    ("call 415 555 0100 2 times", "call [phone] 2 times"),
    # national ids
    ("SSN 123-45-6789", "SSN [national-id]"),
    ("ssn 123 45 6789.", "ssn [national-id]."),
    ("NI QQ 12 34 56 C", "NI [national-id]"),
    ("QQ123456C", "[national-id]"),
    ("AB-12-34-56-D", "[national-id]"),
    ("id 123456789", "id [national-id]"),
    ("passport 987654321012", "passport [national-id]"),
    ("id:123456789", "id:[national-id]"),
    # spelled-out digits
    ("four one one one one one one one one one one one one one one one", "[card]"),
    ("oh two oh seven nine four six oh nine five eight", "[phone]"),
    ("it's one two three, four five, six seven eight nine", "it's [national-id]"),
    # several in one utterance
    (
        "I'm ann@example.com, +44 20 7946 0958, card 4111 1111 1111 1111, ssn 123-45-6789",
        "I'm [email], [phone], card [card], ssn [national-id]",
    ),
]

NEGATIVE = [
    "It costs $24.99 a month",
    "24 dollars",
    "that was in 2026",
    "in 2025 and 2026",
    "at 10:30 or 14:30:00",
    "3 items, 12 seats",
    "order 12345",
    "order 1234567",
    "ticket 12345678",
    "on 21/11/2026",
    "2026-11-21",
    "2026-11-21 14:30",
    "card 4111 1111 1111 1112 please",  # fails Luhn: not a card, and too long for an id
    "4111111111111112",
    "0000 0000 0000 0000",
    "SSN 987-65-4321",  # 9xx area
    "SSN 000-12-3456",
    "SSN 666-12-3456",
    "SSN 123-00-4567",
    "call id 123e4567-e89b-12d3-a456-426614174000",
    "room call-00000000-0000-0000-0000-000000000000",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    "ip 192.168.100.200:7880",
    "livekit 1.8.9",
    "1,234,567,890 users",
    "$123456789",
    "£1250000",
    "3.14159265358979",
    "version v123456789",
    "one two three four",
    "oh one more thing",
    "between 100 200 300 and 400",
    "100 200 300 400",
    "room 101, floor 3",
    "about 5 pm",
    "",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [t for t, _ in POSITIVE] + NEGATIVE)
def test_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "30569309025904",
        "6011111111111117",
        "79927398713",
    ],
)
def test_luhn_valid(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111111111111112", "79927398710", "0000000000000000", "", "4111-1111", "1234567812345678"]
)
def test_luhn_invalid(number: str) -> None:
    assert not luhn_valid(number)


def test_luhn_every_wrong_check_digit_fails() -> None:
    body = "411111111111111"
    valid = [d for d in "0123456789" if luhn_valid(body + d)]
    assert valid == ["1"]
    for d in "0123456789":
        assert (redact(f"card {body}{d}") == "card [card]") == (d == "1")


def test_redact_value_nested() -> None:
    value = {"query": "mail ann@example.com", "n": 4155550100, "items": ["4111 1111 1111 1111", 3]}
    assert redact_value(value) == {"query": "mail [email]", "n": 4155550100, "items": ["[card]", 3]}


def test_setting_defaults_to_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDACTION_ENABLED", raising=False)
    assert RedactionSettings(_env_file=None).redaction_enabled is True
    monkeypatch.setenv("REDACTION_ENABLED", "false")
    assert RedactionSettings(_env_file=None).redaction_enabled is False


# --- the log filter, on a real logger -----------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s | %(who)s"))
    handler.addFilter(RedactingFilter(enabled=True))
    log = logging.getLogger("test.redaction")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    yield log, stream
    log.removeHandler(handler)


def test_filter_formats_then_redacts(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    log.info(
        "caller said %s, call back on %d", "ann@example.com", 4155550100, extra={"who": "+44 20 7946 0958"}
    )
    assert stream.getvalue() == "INFO caller said [email], call back on [phone] | [phone]\n"


def test_filter_keeps_ids_and_ordinary_numbers(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    call_id = "5f0c6a9e-1b2d-4c3e-9f10-426614174000"
    log.info("call %s took %.2f s over %d turns", call_id, 12.5, 7, extra={"who": f"call-{call_id}"})
    assert stream.getvalue() == f"INFO call {call_id} took 12.50 s over 7 turns | call-{call_id}\n"


def test_filter_redacts_tracebacks_and_nested_extras(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    log.addHandler(keep)
    try:
        raise ValueError("no profile for ann@example.com")
    except ValueError:
        log.exception("lookup failed", extra={"who": {"card": "4111 1111 1111 1111"}})
    finally:
        log.removeHandler(keep)
    out = stream.getvalue()
    assert "ann@example.com" not in out
    assert "ValueError: no profile for [email]" in out
    assert "{'card': '[card]'}" in out
    assert records[0].exc_info is None  # the traceback travels as redacted text only


def test_filter_off(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    handler = log.handlers[0]
    handler.filters.clear()
    handler.addFilter(RedactingFilter(enabled=False))
    log.info("ann@example.com", extra={"who": "x"})
    assert stream.getvalue() == "INFO ann@example.com | x\n"
