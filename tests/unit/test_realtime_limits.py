"""The Realtime model's output-token cap for the reply word limit (agent/realtime_model.py)."""

from __future__ import annotations

import pytest

from agent.realtime_model import MAX_OUTPUT_TOKENS, output_token_cap


@pytest.mark.parametrize(
    ("words", "audio", "tokens"), [(200, False, 550), (200, True, 2050), (40, False, 150)]
)
def test_the_cap_leaves_room_for_the_word_limit(words: int, audio: bool, tokens: int) -> None:
    assert output_token_cap(words, audio=audio) == tokens


def test_the_cap_never_exceeds_what_the_api_accepts() -> None:
    assert output_token_cap(1000, audio=True) == MAX_OUTPUT_TOKENS
