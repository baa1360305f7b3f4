"""Replace personal data in text before it reaches the database or the logs.

Call transcripts come from speech-to-text, so numbers arrive in spoken layouts ("4111 1111 1111
1111", "oh two oh seven nine four six ...") as well as written ones. Each kind of data becomes a
typed placeholder, so a transcript stays readable: ``[email]``, ``[phone]``, ``[card]``,
``[national-id]``.

Rules, in the order they run (the order is the design: each rule only sees what the ones before
it left):

1. **E-mail addresses**, written (``ann.lee+x@example.co.uk``) or spoken (``ann dot lee at example
   dot com``, only with a common top-level domain). First, because a local part may hold digits.
2. **UK National Insurance numbers**: two capital letters, six digits, A-D (``QQ 12 34 56 C``).
   Any two letters are accepted (HMRC's own example prefix QQ is formally invalid).
3. **Numbers**. A *chain* is a run of digit groups joined by single spaces or dashes, optionally
   with ``+`` in front and parentheses (``+44 (0)20 7946 0958``). A chain never starts or ends
   inside another token: not next to letters (hex, UUIDs, ``v2``), not after ``$ € £ ¥``, not
   joined to more digits by ``. , / :`` (prices ``24.99``, ``1,250``, dates ``21/11/2026``,
   times ``10:30``, IP addresses, versions; a North American number written with dots,
   ``415.555.0100``, is caught by its own pattern just before). Within a chain, spans of whole
   groups are tried, rule by rule, longest first:

   a. ``+`` and 8-15 digits (E.164 in any grouping): ``[phone]``. Cards never start with ``+``.
   b. 13-19 digits that pass the Luhn check, laid out as a card is read (one run, 4-4-4-4(-n),
      Amex 4-6-5, Diners 4-6-4, or digit by digit): ``[card]``. A run that fails Luhn is not a
      card; it is redacted only if a later rule fits it, and with 13+ digits none does, so a
      16-digit non-card number stays (it may be an order or tracking number).
   c. US SSN ``AAA-GG-SSSS`` (dash or space): ``[national-id]``, unless the area is 000, 666 or
      9xx, the group 00 or the serial 0000 (those are not SSNs; an unseparated 9-digit run is
      still caught by rule e).
   d. Phone numbers in national layouts, before rule e so that they are labelled as phones: North
      American ``(415) 555-0100``, ``1 415 555 0100``, ``4155550100``; numbers with a trunk
      ``0`` and 10-11 digits (``020 7946 0958``, ``07700 900123``, ``01 23 45 67 89``); ``00``
      international prefix with 8-15 more digits.
   e. One unbroken run of 9-12 digits (or 9-12 digits read one by one): ``[national-id]``. Years,
      times, prices, counts and order numbers below 9 digits never reach this length.

4. **Spelled-out digits**: nine or more digit words in a row (``zero``/``oh`` ... ``nine``) are
   read as digits and classified like an unbroken run by rules b, d and e; shorter runs stay.

``redact`` is idempotent: placeholders contain no digits, ``@`` or capital-letter-plus-digit
patterns, so a second pass changes nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
NATIONAL_ID = "[national-id]"


class RedactionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    redaction_enabled: bool = Field(
        default=True,
        description="Replace e-mail addresses, phone, card and national-id numbers in stored "
        "transcripts and in logs.",
        examples=["true"],
    )


@functools.cache
def redaction_enabled() -> bool:
    """REDACTION_ENABLED, read once per process (a bad value stops the process, naming it)."""
    from voicedesk.config import load_settings

    return load_settings(RedactionSettings).redaction_enabled


# --- e-mail and NI ------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_TLDS = "com|net|org|edu|gov|io|co|uk|de|fr|es|it|nl|ie|ca|au|us|me|ai|app|dev|info|biz"
_SPOKEN_EMAIL_RE = re.compile(
    rf"(?<![\w.+-])[\w+-]+(?:(?:\.| dot | underscore )[\w+-]+)* at [\w-]+(?:(?:\.| dot )[\w-]+)*"
    rf"(?:\.| dot )(?:{_TLDS})\b",
    re.IGNORECASE,
)
# North American numbers written with dots (415.555.0100): dots never join a chain (decimals, IPs)
_DOTTED_PHONE_RE = re.compile(r"(?<![\w.])(?:1\.)?[2-9]\d{2}\.[2-9]\d{2}\.\d{4}(?!\w|\.\d)")
_NI_RE = re.compile(r"\b[A-Z]{2}[ -]?\d{2}[ -]?\d{2}[ -]?\d{2}[ -]?[A-D]\b")

# --- numeric chains -----------------------------------------------------------------------------

_GROUP = r"(?:\(\d{1,5}\)\d*|\d+)"
_CHAIN_RE = re.compile(
    r"(?<![\w+$€£¥])(?<!\w-)(?<!\d[.,/:])"  # not inside a token, an amount or a date/time/decimal
    rf"\+?{_GROUP}(?:(?:[ -]|(?<=\))){_GROUP}){{0,40}}"  # bounded: no real number has more groups
    r"(?!\w)(?!-\w)(?![.,/:]\d)"
)
_DIGITS_RE = re.compile(r"\d+")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries (all-zero runs do not count)."""
    if not digits.isdigit() or not digits.strip("0"):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _joined(groups: list[str]) -> str | None:
    """The digits of a span read as one unbroken run: one group, or all groups single digits."""
    if len(groups) == 1 or all(len(g) == 1 for g in groups):
        return "".join(groups)
    return None


def _is_card(groups: list[str]) -> bool:
    digits = "".join(groups)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return False
    if _joined(groups) is not None:
        return True
    lens = [len(g) for g in groups]
    return lens in ([4, 6, 5], [4, 6, 4]) or (
        len(lens) in (4, 5) and all(n == 4 for n in lens[:4]) and (len(lens) == 4 or lens[4] <= 3)
    )


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _is_ssn(groups: list[str]) -> bool:
    return [len(g) for g in groups] == [3, 2, 4] and _ssn_ok(*groups)


def _nanp(digits: str) -> bool:
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


def _is_phone(groups: list[str]) -> bool:
    digits = "".join(groups)
    lens = [len(g) for g in groups]
    run = _joined(groups) is not None
    if (run or lens in ([3, 3, 4], [1, 3, 3, 4])) and _nanp(digits):
        return True  # North America: 415 555 0100, 1 415 555 0100, 4155550100
    if digits.startswith("00"):
        return 8 <= len(digits) - 2 <= 15 and digits[2] != "0"  # 00 44 20 7946 0958
    if digits.startswith("0") and 10 <= len(digits) <= 11 and len(groups) <= 5:
        return run or 2 <= lens[0] <= 5  # trunk 0: 020 7946 0958, 07700 900123
    return False


def _is_generic_id(groups: list[str]) -> bool:
    digits = _joined(groups)
    return digits is not None and 9 <= len(digits) <= 12 and bool(digits.strip("0"))


_SPAN_RULES: list[tuple[Callable[[list[str]], bool], str]] = [
    (_is_card, CARD),
    (_is_ssn, NATIONAL_ID),
    (_is_phone, PHONE),
    (_is_generic_id, NATIONAL_ID),
]
_MIN_DIGITS, _MAX_DIGITS = 9, 19  # what any rule can match
_MAX_SPAN = _MAX_DIGITS  # so no span needs more groups than that


def _longest_match(
    groups: list[str], cum: list[int], i: int, end: int, test: Callable[[list[str]], bool]
) -> int | None:
    for j in range(min(end, i + _MAX_SPAN), i, -1):
        digits = cum[j] - cum[i]
        if digits < _MIN_DIGITS:
            return None  # shorter spans only have fewer
        if digits <= _MAX_DIGITS and test(groups[i:j]):
            return j
    return None


def _find_spans(groups: list[str]) -> list[tuple[int, int, str]]:
    """Spans (group index range, placeholder): rule by rule, leftmost and longest first, each
    rule only in what earlier rules left. Iterative and bounded: a span has at most 19 groups."""
    free = [(0, len(groups))]
    cum = [0]
    for g in groups:
        cum.append(cum[-1] + len(g))
    found: list[tuple[int, int, str]] = []
    for test, label in _SPAN_RULES:
        still_free = []
        for start, end in free:
            i = start
            while i < end:
                j = _longest_match(groups, cum, i, end, test)
                if j is None:
                    i += 1
                    continue
                found.append((i, j, label))
                still_free.append((start, i))
                start = i = j
            still_free.append((start, end))
        free = still_free
    return sorted(found)


def _redact_chain(match: re.Match[str]) -> str:
    text = match.group(0)
    groups = [(m.start(), m.end(), m.group(0)) for m in _DIGITS_RE.finditer(text)]
    digits = [g for _, _, g in groups]
    if text.startswith("+"):
        total = 0
        for k, g in enumerate(digits):
            total += len(g)
            if total > 15:
                break
            if total >= 8 and (k + 1 == len(digits) or total + len(digits[k + 1]) > 15):
                rest = _CHAIN_RE.sub(_redact_chain, text[groups[k][1] :])
                return PHONE + rest
    out: list[str] = []
    pos = 0
    for i, j, label in _find_spans(digits):
        start, end = groups[i][0], groups[j - 1][1]
        if i == 0:
            start = 0  # with a leading "+" or "("
        elif text[start - 1] == "(":
            start -= 1
        if text[start] == "(" and end < len(text) and text[end] == ")":
            end += 1
        out += [text[pos:start], label]
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --- spelled-out digits -------------------------------------------------------------------------

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_SPELLED_RE = re.compile(rf"\b{_WORD}(?:[ ,-]+{_WORD}){{8,}}\b", re.IGNORECASE)


def _redact_spelled(match: re.Match[str]) -> str:
    digits = "".join(_DIGIT_WORDS[w.lower()] for w in re.findall(r"[A-Za-z]+", match.group(0)))
    for test, label in _SPAN_RULES:
        if test([digits]):
            return label
    return match.group(0)


def redact(text: str) -> str:
    """Replace e-mail addresses, phone, card and national-id numbers with typed placeholders."""
    if not text:
        return text
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _SPOKEN_EMAIL_RE.sub(EMAIL, text)
    text = _NI_RE.sub(NATIONAL_ID, text)
    text = _DOTTED_PHONE_RE.sub(PHONE, text)
    text = _CHAIN_RE.sub(_redact_chain, text)
    return _SPELLED_RE.sub(_redact_spelled, text)


def redact_if_enabled(text: str) -> str:
    """``redact(text)`` unless REDACTION_ENABLED is false: what the call record stores."""
    return redact(text) if redaction_enabled() else text


def redact_value(value: Any) -> Any:
    """Redact strings, also inside dicts, lists and tuples (a tool's arguments, a log extra)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


# LogRecord attributes that are not a message or an ``extra`` field
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class RedactingFilter(logging.Filter):
    """Redact a record in place on its way to a handler, so PII never reaches a log sink.

    The message is formatted first (``msg % args``) and then redacted, because a number passed as
    an argument is only text once formatted. String ``extra`` fields (also nested in dicts and
    lists) and the traceback text are redacted too; the traceback then travels as text only
    (``exc_info`` is cleared), as formatters would otherwise render it again from the exception.
    Fields LiveKit adds for the job (``room``, ``call_id``) survive: ids are never redacted
    because digits joined to letters or hyphenated hex are not chains.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        super().__init__()
        self._enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        if not (self._enabled if self._enabled is not None else redaction_enabled()):
            return True
        try:
            self._redact(record)
        except Exception:  # noqa: BLE001 - a log call must never raise; drop the text instead
            record.msg, record.args, record.exc_info, record.exc_text = (
                "[unredactable log message]",
                None,
                None,
                None,
            )
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict) and not record.args:
            record.msg = redact_value(record.msg)
        else:
            try:
                message = record.getMessage()
            except (
                TypeError,
                ValueError,
                KeyError,
            ):  # a malformed call: let the handler report it as logging does
                return True
            record.msg, record.args = redact(message), None
        if "message" in record.__dict__ and isinstance(record.message, str):
            record.message = redact(record.message)
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_ATTRS and isinstance(value, str | dict | list | tuple):
                record.__dict__[key] = redact_value(value)
