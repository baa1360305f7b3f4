"""Phone PINs are stored as scrypt hashes: a database leak must not reveal anyone's PIN."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
_N, _R, _P = 2**14, 8, 1  # ~15 ms per check: cheap for one call, slow for a brute-force run


def hash_pin(pin: str) -> str:
    if not PIN_PATTERN.match(pin):
        raise ValueError("a phone PIN is 4 to 8 digits")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        candidate = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except ValueError:  # a damaged hash matches nothing; it must not break the call
        return False
    return hmac.compare_digest(candidate, expected)


def digits_only(spoken: str) -> str:
    """'1 2 3 4', '12-34' -> '1234'; the LLM passes what the caller said."""
    return "".join(ch for ch in spoken if ch.isdigit())


_WORD_DIGITS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# 4 to 8 digits, spaced or not ("4821", "4 8 2 1", "4-8-2-1"), or spoken as words ("four eight two one").
_SPOKEN_PIN = re.compile(
    rf"(?<!\d)\d(?:[\s.,-]*\d){{3,7}}(?!\d)|\b{_WORD_DIGITS}(?:[\s.,-]+{_WORD_DIGITS}){{3,7}}\b",
    re.IGNORECASE,
)


def mask_pins(text: str) -> str:
    """What might be a PIN in what a caller said (or a summary of it) becomes ``[PIN]``."""
    return _SPOKEN_PIN.sub("[PIN]", text)
