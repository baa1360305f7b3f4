"""Text with Markdown headings → bounded, overlapping chunks that each know their heading path.

Why this shape: a voice agent reads a passage aloud, so chunks are small (≤ ``max_chars``); an
answer must not be cut in half, so chunks end on paragraph or sentence boundaries and repeat the
previous chunk's last sentences (``overlap_chars``); and the heading path ("Billing > Refunds")
tells both the search and the LLM what a passage is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADING_SEPARATOR = " > "
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(\s+)")


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    body: str


@dataclass(frozen=True)
class Chunk:
    index: int
    heading: str  # the heading path, e.g. "Billing > Refunds"; "" before the first heading
    content: str


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) and the whitespace that separated it."""

    text: str
    sep: str  # "\n\n" before a paragraph, "\n" or " " inside one


def split_sections(text: str) -> list[Section]:
    """Split on Markdown ATX headings (not inside code fences), tracking the heading path."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    fence: str | None = None

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append(Section(tuple(title for _, title in path), content))
        body.clear()

    for line in text.splitlines():
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker[0] * 3
            elif marker.startswith(fence):
                fence = None
            body.append(line)
            continue
        heading = None if fence else _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, heading.group(2).strip()))
        else:
            body.append(line)
    flush()
    return sections


def _split_long(sentence: str, limit: int) -> list[str]:
    """Cut a sentence longer than ``limit`` at word boundaries (a word longer than that, anywhere)."""
    pieces: list[str] = []
    current = ""
    for word in sentence.split():
        while len(word) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > limit:
            pieces.append(current)
            current = word
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _sentences(paragraph: str) -> list[tuple[str, str]]:
    """(sentence, whitespace before it) pairs; line breaks inside a paragraph are kept."""
    out: list[tuple[str, str]] = []
    start, sep = 0, ""
    for match in _SENTENCE_END.finditer(paragraph):
        out.append((paragraph[start : match.start(1)], sep))
        sep = "\n" if "\n" in match.group(1) else " "
        start = match.end()
    out.append((paragraph[start:], sep))
    return [(text.strip(), sep) for text, sep in out if text.strip()]


def _units(body: str, limit: int) -> list[_Unit]:
    units: list[_Unit] = []
    for paragraph in re.split(r"\n[ \t]*\n", body):
        first = True
        for sentence, sep in _sentences(paragraph.strip()):
            for piece in [sentence] if len(sentence) <= limit else _split_long(sentence, limit):
                units.append(_Unit(piece, "\n\n" if first else sep or " "))
                first = False
    return units


def _join(units: list[_Unit]) -> str:
    return "".join(unit.text if i == 0 else unit.sep + unit.text for i, unit in enumerate(units))


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The trailing whole sentences of a chunk that fit in ``overlap`` characters."""
    taken: list[_Unit] = []
    size = 0
    for unit in reversed(units):
        size += len(unit.text) + 1
        if size > overlap:
            break
        taken.insert(0, unit)
    if not taken and units and overlap > 0:
        # The last sentence alone is longer than the overlap: repeat its last words instead.
        words = units[-1].text.split()
        kept: list[str] = []
        while words and len(" ".join([words[-1], *kept])) <= overlap:
            kept.insert(0, words.pop())
        if kept and words:
            taken = [_Unit(" ".join(kept), "\n\n")]
    return taken


def _pack(units: list[_Unit], max_chars: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[_Unit] = []
    fresh = 0  # units in `current` that are not overlap from the previous chunk
    for unit in units:
        if current and len(_join([*current, unit])) > max_chars:
            if fresh:
                chunks.append(_join(current))
                current = _tail(current, overlap)
                fresh = 0
            while current and len(_join([*current, unit])) > max_chars:
                current.pop(0)  # the overlap must never push a chunk over the bound
        current.append(unit)
        fresh += 1
    if fresh:
        chunks.append(_join(current))
    return chunks


def chunk_text(text: str, *, max_chars: int = 900, overlap_chars: int = 150) -> list[Chunk]:
    """Chunks of at most ``max_chars`` characters, section by section, in document order."""
    if max_chars < 50:
        raise ValueError("max_chars must be at least 50")
    overlap = max(0, min(overlap_chars, max_chars // 2))
    chunks: list[Chunk] = []
    for section in split_sections(text):
        heading = HEADING_SEPARATOR.join(section.headings)
        for content in _pack(_units(section.body, max_chars), max_chars, overlap):
            chunks.append(Chunk(index=len(chunks), heading=heading, content=content))
    return chunks
