"""Chunking: bounded size, heading paths, overlap on sentence boundaries, nothing lost."""

from __future__ import annotations

import itertools
import re

from knowledge.chunking import chunk_text, split_sections

GUIDE = """Preamble before any heading.

# Billing

Billing overview. We bill monthly.

## Refunds

{refunds}

```bash
# a comment in a code block, not a heading
curl https://example.com
```

### Annual plans
Annual plans are refunded pro rata.

# Security
We encrypt everything.
"""
SENTENCES = [f"Refund rule number {i} applies to orders placed in region {i % 7}." for i in range(30)]
TEXT = GUIDE.format(refunds=" ".join(SENTENCES))


def test_sections_follow_the_heading_path_and_ignore_code_fences() -> None:
    sections = split_sections(TEXT)
    paths = [s.headings for s in sections]
    assert paths == [
        (),
        ("Billing",),
        ("Billing", "Refunds"),
        ("Billing", "Refunds", "Annual plans"),
        ("Security",),
    ]
    assert "# a comment in a code block" in sections[2].body


def test_chunks_are_bounded_and_carry_their_heading() -> None:
    chunks = chunk_text(TEXT, max_chars=300, overlap_chars=80)
    assert all(len(c.content) <= 300 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    refunds = [c for c in chunks if c.heading == "Billing > Refunds"]
    assert len(refunds) > 3  # the long section was split
    assert chunks[0].heading == "" and chunks[0].content == "Preamble before any heading."
    assert chunks[-1].heading == "Security"
    assert any(c.heading == "Billing > Refunds > Annual plans" for c in chunks)


def test_chunks_end_on_sentence_boundaries_and_overlap() -> None:
    chunks = [
        c for c in chunk_text(TEXT, max_chars=300, overlap_chars=80) if c.heading == "Billing > Refunds"
    ]
    for chunk in chunks[:-1]:
        assert chunk.content.endswith(".")
    for previous, current in itertools.pairwise(chunks):
        last_sentence = re.split(r"(?<=\.) ", previous.content)[-1]
        if "```" not in current.content:
            assert current.content.startswith(last_sentence), (previous.content, current.content)


def test_every_sentence_survives_chunking() -> None:
    joined = "\n".join(c.content for c in chunk_text(TEXT, max_chars=300, overlap_chars=80))
    for sentence in [*SENTENCES, "We bill monthly.", "Annual plans are refunded pro rata."]:
        assert sentence in joined


def test_no_overlap_when_asked_for_none() -> None:
    chunks = chunk_text(" ".join(SENTENCES), max_chars=200, overlap_chars=0)
    text = " ".join(c.content for c in chunks)
    assert text == " ".join(SENTENCES)


def test_overlong_sentences_and_words_are_cut_to_the_bound() -> None:
    text = "word " * 400 + "x" * 1000
    chunks = chunk_text(text, max_chars=200, overlap_chars=50)
    assert all(len(c.content) <= 200 for c in chunks)
    assert "".join(c.content for c in chunks).count("x") >= 1000


def test_empty_sections_make_no_chunks() -> None:
    assert chunk_text("# Title\n\n## Empty\n\n   \n") == []
    assert chunk_text("") == []
