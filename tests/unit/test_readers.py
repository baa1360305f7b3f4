"""Readers: Markdown front matter, plain text, HTML and a real PDF become title + text + tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.readers import UnreadableFileError, read_document

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kb"


def test_markdown_front_matter_gives_title_and_tiers(tmp_path: Path) -> None:
    path = tmp_path / "sla.md"
    path.write_text(
        "---\ntitle: Enterprise SLA\ntiers: [pro, Enterprise]\nowner: support\n---\n"
        "# Service levels\n\nUptime is 99.95 %.\n"
    )
    doc = read_document(path)
    assert doc.title == "Enterprise SLA"
    assert doc.tiers == ("pro", "enterprise")
    assert doc.text.startswith("# Service levels")
    assert doc.metadata == {"owner": "support"}
    assert doc.format == "markdown"


def test_markdown_without_front_matter_takes_the_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "faq.markdown"
    path.write_text("Intro.\n\n# Frequently asked\n\nText.\n")
    doc = read_document(path)
    assert doc.title == "Frequently asked"
    assert doc.tiers is None  # the file does not say: the caller decides


def test_markdown_with_an_unknown_tier_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.md"
    path.write_text("---\ntiers: [gold]\n---\nText.\n")
    with pytest.raises(UnreadableFileError, match="unknown tier 'gold'"):
        read_document(path)


def test_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "opening_hours.txt"
    path.write_text("Opening hours\n\nMonday to Friday, 9 to 5.\n")
    doc = read_document(path)
    assert doc.title == "Opening hours"
    assert "Monday to Friday" in doc.text
    one_line = tmp_path / "holiday_notice.txt"
    one_line.write_text("We are closed on public holidays.\n")
    assert read_document(one_line).title == "Holiday notice"


def test_html_keeps_headings_and_drops_scripts(tmp_path: Path) -> None:
    path = tmp_path / "security.html"
    path.write_bytes(
        b"<!doctype html><html><head><title>Security overview</title>"
        b'<meta name="tiers" content="enterprise"><style>p{color:red}</style></head>'
        b"<body><nav>Home | Docs</nav><h1>Security</h1><p>We encrypt   data\n at rest.</p>"
        b"<h2>Access</h2><ul><li>SSO</li><li>SCIM</li></ul><script>track()</script>"
        b"<p>Caf\xc3\xa9 &amp; more</p></body></html>"
    )
    doc = read_document(path)
    assert doc.title == "Security overview"
    assert doc.tiers == ("enterprise",)
    assert "# Security" in doc.text.splitlines()
    assert "## Access" in doc.text.splitlines()
    assert "We encrypt data at rest." in doc.text
    assert "- SSO\n- SCIM" in doc.text and "Café & more" in doc.text
    assert "track()" not in doc.text and "color" not in doc.text and "Home | Docs" not in doc.text


def test_pdf_text_and_title() -> None:
    doc = read_document(FIXTURES / "warranty.pdf")
    assert doc.title == "Warranty handbook"  # from the PDF's Info dictionary
    assert "Every device carries a two year warranty." in doc.text
    assert "Keep the original receipt." in doc.text  # second page
    assert doc.metadata["pages"] == 2


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4\nthis is not a pdf")
    with pytest.raises(UnreadableFileError, match="PDF"):
        read_document(corrupt)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Caf\xe9".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match="not UTF-8"):
        read_document(latin1)
    empty = tmp_path / "empty.md"
    empty.write_text("---\ntitle: Nothing\n---\n\n")
    with pytest.raises(UnreadableFileError, match="no text"):
        read_document(empty)
    with pytest.raises(UnreadableFileError, match="unsupported"):
        read_document(tmp_path / "image.png")
    with pytest.raises(UnreadableFileError):
        read_document(tmp_path / "missing.md")
