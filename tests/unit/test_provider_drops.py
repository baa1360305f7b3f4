"""The text arithmetic behind resuming a cut reply: where the next TTS starts, and which words
of a fallback LLM's answer repeat what the caller already heard."""

from __future__ import annotations

import pytest

from agent.llm_continue import strip_repeat
from agent.tts_resume import unspoken_rest

REPLY = "Hello Fay. We are open from nine to five! Is there anything else?"


@pytest.mark.parametrize(
    ("spoken_words", "rest"),
    [
        (0, REPLY),  # nothing heard: the whole reply
        (1, REPLY),  # "Hello" heard, "Fay." not: its sentence again
        (2, "We are open from nine to five! Is there anything else?"),  # a sentence ended exactly
        (5, "We are open from nine to five! Is there anything else?"),
        (9, "Is there anything else?"),
        (13, ""),  # everything was spoken
        (40, ""),
    ],
)
def test_unspoken_rest_starts_at_the_sentence_in_progress(spoken_words: int, rest: str) -> None:
    assert unspoken_rest(REPLY, spoken_words) == rest


@pytest.mark.parametrize(
    ("said", "text", "expected"),
    [
        ("We are", " open from nine.", " open from nine."),  # a real continuation
        ("We are", "We are open from nine.", " open from nine."),  # started over
        ("We are", "we ARE, open", " open"),  # case and punctuation do not hide a repeat
        ("We are", "We", None),  # too short to tell yet
        ("We are", "We are", None),
        ("We are", "Sorry, we", "Sorry, we"),  # differs already
        ("", "Anything", "Anything"),
    ],
)
def test_strip_repeat(said: str, text: str, expected: str | None) -> None:
    assert strip_repeat(said, text) == expected
