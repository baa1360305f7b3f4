"""Phone PINs: stored only as salted scrypt hashes, checked against what the caller said."""

from __future__ import annotations

import pytest

from voicedesk.pins import check_pin, digits_only, hash_pin, mask_pins


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_pin("4821")


def test_the_right_pin_matches_its_hash(stored: str) -> None:
    assert check_pin("4821", stored)


@pytest.mark.parametrize("guess", ["4822", "1284", "48210", "482", "", "0000"])
def test_a_wrong_pin_does_not_match(stored: str, guess: str) -> None:
    assert not check_pin(guess, stored)


def test_the_hash_does_not_reveal_the_pin(stored: str) -> None:
    assert "4821" not in stored
    assert stored.startswith("scrypt$")


def test_the_same_pin_hashes_differently_each_time() -> None:
    first, second = hash_pin("123456"), hash_pin("123456")
    assert first != second  # salted: equal PINs do not show up as equal hashes
    assert check_pin("123456", first) and check_pin("123456", second)


def test_shortest_and_longest_pins_round_trip() -> None:
    for pin in ("0000", "00000001", "98765432"):
        assert check_pin(pin, hash_pin(pin)), pin


@pytest.mark.parametrize(
    "pin", ["123", "123456789", "12a4", "12 34", "12-34", "", "one two three four", "١٢٣٤"]
)
def test_a_pin_that_is_not_4_to_8_digits_is_refused(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 8 digits"):
        hash_pin(pin)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "4821",
        "not a hash",
        "bcrypt$16384$8$1$00$00",
        "scrypt$16384$8$1$00",
        "scrypt$x$8$1$00$00",
        "scrypt$16384$8$1$zz$00",
        "scrypt$16384$8$1$00$not-hex",
    ],
)
def test_a_malformed_stored_hash_never_matches(garbage: str) -> None:
    assert check_pin("4821", garbage) is False


def test_a_truncated_stored_hash_never_matches(stored: str) -> None:
    assert check_pin("4821", stored[:-1]) is False
    assert check_pin("4821", stored[:-2]) is False


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("1 2-3 4", "1234"),
        ("1234", "1234"),
        ("12-34", "1234"),
        ("my PIN is 4 8 2 1.", "4821"),
        ("one two three four", ""),
        ("", ""),
    ],
)
def test_digits_only_keeps_just_the_digits(spoken: str, digits: str) -> None:
    assert digits_only(spoken) == digits


def test_a_spoken_pin_with_separators_verifies(stored: str) -> None:
    assert check_pin(digits_only("4, 8, 2, 1"), stored)


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("My PIN is 4821.", "My PIN is [PIN]."),
        ("it's 4 8 2 1", "it's [PIN]"),
        ("4-8-2-1 please", "[PIN] please"),
        ("My PIN is four eight two one.", "My PIN is [PIN]."),
        ("Oh Nine One Two Three", "[PIN]"),
    ],
)
def test_what_may_be_a_pin_is_masked(said: str, stored: str) -> None:
    assert mask_pins(said) == stored


@pytest.mark.parametrize(
    "said",
    ["I have two questions", "one or two things", "call 12345678901", "plan 123", "version 2.0"],
)
def test_ordinary_numbers_are_left_alone(said: str) -> None:
    assert mask_pins(said) == said
