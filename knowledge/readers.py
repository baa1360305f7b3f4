"""Files → title + text, with headings kept as Markdown `#` lines so chunking can follow them.

Formats: Markdown (YAML front matter: ``title:``, ``tiers: [pro, enterprise]``), plain text,
HTML (BeautifulSoup's stdlib parser; ``<meta name="tiers" content="pro,enterprise">``) and PDF
(pypdf). Anything that cannot be read raises :class:`UnreadableFileError` with the reason, so
the ingester can name the file and carry on with the others.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from pypdf import PdfReader

TIERS = ("basic", "pro", "enterprise")
SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_MD_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


class UnreadableFileError(Exception):
    """The file exists but yields no usable text (corrupt, encrypted, not UTF-8, empty, ...)."""


@dataclass(frozen=True)
class SourceDocument:
    """What a reader extracted. ``tiers`` is None when the file does not say (caller decides)."""

    title: str
    text: str
    format: str
    tiers: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def read_document(path: Path, data: bytes | None = None) -> SourceDocument:
    """Read ``path`` (or its already-read ``data``) into a :class:`SourceDocument`."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UnreadableFileError(f"unsupported file type {path.suffix or '(none)'}")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableFileError(exc.strerror or str(exc)) from exc
    reader = {"markdown": _read_markdown, "text": _read_text, "html": _read_html, "pdf": _read_pdf}[kind]
    doc = reader(data, path)
    if not doc.text.strip():
        raise UnreadableFileError("no text found in the file")
    return doc


def parse_tiers(value: Any) -> tuple[str, ...]:
    """``[pro, enterprise]``, ``"pro, enterprise"`` or ``[]`` → validated, de-duplicated tiers."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    tiers: list[str] = []
    for item in items:
        tier = str(item).strip().lower()
        if not tier:
            continue
        if tier not in TIERS:
            raise UnreadableFileError(f"unknown tier {tier!r} (allowed: {', '.join(TIERS)})")
        if tier not in tiers:
            tiers.append(tier)
    return tuple(tiers)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text (byte {exc.start})") from exc


def _title_line(text: str) -> str | None:
    """A short first line standing alone (no sentence end) reads as a title; else None."""
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    alone = len(lines) == 1 or not lines[1].strip()
    if 0 < len(first) <= 80 and alone and not first.endswith((".", "!", "?", ",", ";", ":")):
        return first
    return None


def _fallback_title(path: Path) -> str:
    return re.sub(r"[_-]+", " ", path.stem).strip().capitalize() or path.name


def _read_markdown(data: bytes, path: Path) -> SourceDocument:
    text = _decode(data)
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            raise UnreadableFileError(f"invalid YAML front matter: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise UnreadableFileError("front matter must be a YAML mapping")
        meta = loaded or {}
        text = text[match.end() :]
    tiers = parse_tiers(meta.pop("tiers")) if "tiers" in meta else None
    h1 = _MD_H1.search(text)
    title = str(meta.pop("title", "") or "").strip() or (h1.group(1).strip() if h1 else _fallback_title(path))
    extra = {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}
    return SourceDocument(title=title, text=text.strip(), format="markdown", tiers=tiers, metadata=extra)


def _read_text(data: bytes, path: Path) -> SourceDocument:
    text = _decode(data).strip()
    title = _title_line(text) or _fallback_title(path)
    return SourceDocument(title=title, text=text, format="text")


_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_SKIP = {"script", "style", "noscript", "template", "svg", "head", "nav", "iframe", "object", "button"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "dl",
    "table", "thead", "tbody", "tr", "pre", "blockquote", "figure", "figcaption", "address", "hr",
    "details", "summary",
}  # fmt: skip


def _html_blocks(node: Tag, out: list[str], pre: bool = False) -> None:
    """Flatten HTML to text: headings become `#` lines, blocks paragraphs, inline text flows."""
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            out.append(str(child) if pre else re.sub(r"\s+", " ", str(child)))
            continue
        if not isinstance(child, Tag) or child.name in _SKIP:
            continue
        if child.name in _HEADINGS:
            heading = " ".join(child.get_text(" ").split())
            if heading:
                out.append(f"\n\n{'#' * _HEADINGS[child.name]} {heading}\n\n")
        elif child.name == "br":
            out.append("\n")
        elif child.name in {"li", "dt", "dd"}:
            out.append("\n- " if child.name == "li" else "\n")
            _html_blocks(child, out, pre)
        elif child.name in {"td", "th"}:
            out.append(" ")
            _html_blocks(child, out, pre)
            out.append(" ")
        elif child.name in _BLOCKS:
            out.append("\n\n")
            _html_blocks(child, out, pre or child.name == "pre")
            out.append("\n\n")
        else:
            _html_blocks(child, out, pre)


def _tidy(text: str) -> str:
    """Collapse the whitespace HTML and PDF extraction leave behind; keep paragraph breaks."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    text = "\n".join(lines)
    text = re.sub(r"^- *\n+", "- ", text, flags=re.MULTILINE)  # <li><p>...</p></li>
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _read_html(data: bytes, path: Path) -> SourceDocument:
    soup = BeautifulSoup(data, "html.parser")  # detects the charset from the bytes / <meta>
    title_tag = soup.find("title")
    tiers_meta = soup.find("meta", attrs={"name": re.compile(r"^(kb-)?tiers$", re.I)})
    tiers = parse_tiers(tiers_meta.get("content")) if isinstance(tiers_meta, Tag) else None
    root = soup.body or soup
    out: list[str] = []
    _html_blocks(root, out)
    text = _tidy("".join(out))
    h1 = soup.find("h1")
    title = (
        (title_tag.get_text(" ", strip=True) if title_tag else "")
        or (h1.get_text(" ", strip=True) if h1 else "")
        or _fallback_title(path)
    )
    return SourceDocument(title=title, text=text, format="html", tiers=tiers)


def _read_pdf(data: bytes, path: Path) -> SourceDocument:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFileError("the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        info_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableFileError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise UnreadableFileError(f"cannot read PDF: {type(exc).__name__}: {exc}") from exc
    text = _tidy("\n\n".join(pages))
    if not text:
        raise UnreadableFileError("the PDF has no extractable text (a scan without OCR?)")
    title = str(info_title).strip() or _title_line(text) or _fallback_title(path)
    return SourceDocument(title=title, text=text, format="pdf", metadata={"pages": len(pages)})
