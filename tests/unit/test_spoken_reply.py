"""LLM text made speakable and cut to the word limit at a sentence boundary, as it streams."""

from __future__ import annotations

import asyncio
import re

import pytest
from livekit.agents import llm

from agent.spoken_reply import SpokenReply, speakable, spoken, word_count

SPEAKABLE = [
    ("**Pro** costs *twenty-four* dollars.", "Pro costs twenty-four dollars."),
    ("- Open Settings", "Open Settings."),
    ("* Choose Security", "Choose Security."),
    ("2. Click Save", "Click Save."),
    ("3) Click Save", "Click Save."),
    ("## Resetting your password", "Resetting your password."),
    ("> Quoted tip here.", "Quoted tip here."),
    ("See [the SSO guide](https://help.acme.com/sso) for more.", "See the SSO guide for more."),
    ("Go to https://www.acme.com/pricing?x=1 today.", "Go to acme.com today."),
    ("Visit help.acme.com or http://status.acme.io/", "Visit help.acme.com or status.acme.io."),
    ("Run `voicedesk kb ingest` now.", "Run voicedesk kb ingest now."),
    ("| Basic | nine dollars |", "Basic, nine dollars."),
    ("|---|---|", ""),
    ("```", ""),
    ("Great news \U0001f389!", "Great news!"),
    ("Plain sentence, nothing to do.", "Plain sentence, nothing to do."),
    ("Prices are $24.99 per seat.", "Prices are $24.99 per seat."),
]


@pytest.mark.parametrize(("written", "said"), SPEAKABLE)
def test_markdown_lists_and_urls_become_speakable(written: str, said: str) -> None:
    assert speakable(written) == said


def _stream(text: str, reply: SpokenReply, piece: int = 3) -> list[str]:
    """Feed ``text`` the way an LLM streams it: a few characters at a time."""
    out: list[str] = []
    for i in range(0, len(text), piece):
        out += reply.push(text[i : i + piece])
    return out + reply.flush()


def _sentences(n: int, words: int = 10) -> str:
    return " ".join(f"Sentence {i} " + " ".join(["word"] * (words - 3)) + " end." for i in range(n))


def test_a_short_reply_passes_whole() -> None:
    reply = SpokenReply(200, tail="Would you like me to go on?")
    out = _stream("Sure. The Pro plan costs twenty-four dollars per seat per month.", reply)
    assert out == ["Sure.", " The Pro plan costs twenty-four dollars per seat per month."]
    assert not reply.cut


@pytest.mark.parametrize("piece", [1, 4, 17, 1000])
def test_a_long_reply_is_cut_after_the_last_whole_sentence_that_fits(piece: int) -> None:
    tail = "Would you like me to go on?"
    reply = SpokenReply(200, tail=tail)
    said = "".join(_stream(_sentences(30), reply, piece))  # 300 words
    assert reply.cut and word_count(said) <= 200
    assert said == said.strip() and "  " not in said  # stored as spoken: no stray spaces
    assert said.endswith(tail)
    body = said.removesuffix(tail).strip()
    assert re.fullmatch(r"(Sentence \d+ (word ){7}end\. ?)+", body + " ")
    assert word_count(body) == 190  # 19 whole sentences, then 6 words of tail would not fit a 20th


def test_exactly_at_the_limit_nothing_is_cut() -> None:
    reply = SpokenReply(200, tail="Would you like me to go on?")
    said = "".join(_stream(_sentences(20), reply))
    assert word_count(said) == 200 and not reply.cut and "go on" not in said


def test_one_sentence_longer_than_the_limit_is_clipped_at_a_clause() -> None:
    long = "First part " + " ".join(["word"] * 120) + ", and then " + " ".join(["more"] * 150) + "."
    reply = SpokenReply(200, tail="Shall I go on?")
    out = _stream(long, reply)
    said = "".join(out)
    assert word_count(said) <= 200 and said.endswith("Shall I go on?")
    assert out[0].strip().endswith("word.")  # cut at the comma, not mid-clause


def test_abbreviations_and_numbered_items_do_not_end_a_sentence() -> None:
    reply = SpokenReply(200)
    out = _stream("Use a plan, e.g. Pro, for teams.\n1. Open Settings.\n2. Save.", reply)
    assert out == ["Use a plan, e.g. Pro, for teams.", " Open Settings.", " Save."]


def _chunk(content: str | None = None, calls: list[llm.FunctionToolCall] | None = None) -> llm.ChatChunk:
    return llm.ChatChunk(
        id="c", delta=llm.ChoiceDelta(role="assistant", content=content, tool_calls=calls or [])
    )


def test_tool_calls_pass_through_even_after_a_cut() -> None:
    call = llm.FunctionToolCall(name="end_call", arguments="{}", call_id="call_1")

    async def upstream():
        for word in _sentences(30).split(" "):
            yield _chunk(word + " ")
        yield _chunk(calls=[call])

    async def collect() -> list[llm.ChatChunk | str]:
        return [c async for c in spoken(upstream(), SpokenReply(50, tail="More?"))]

    out = asyncio.run(collect())
    text = "".join(c for c in out if isinstance(c, str))
    calls = [c for c in out if isinstance(c, llm.ChatChunk)]
    assert word_count(text) <= 50 and text.endswith("More?")
    assert [c.delta.tool_calls for c in calls if c.delta] == [[call]]
    assert all(not c.delta.content for c in calls if c.delta)
