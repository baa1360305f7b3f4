"""Prompt texts live in files next to this module so they can be edited without touching code."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent
DEFAULT_COMPANY = "Acme"


@cache
def load(name: str) -> str:
    """Return the text of ``prompts/<name>`` (read once per process)."""
    return (PROMPTS_DIR / name).read_text(encoding="utf-8").strip()


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, **values: str) -> str:
    """Fill ``{placeholders}``; unknown ones become empty instead of raising."""
    return template.format_map(_Blank(values))


def greeting(name: str | None, *, template: str | None = None, company: str = DEFAULT_COMPANY) -> str:
    """The first thing the caller hears, with their name when we know it.

    ``template`` is the user's own greeting from their settings; ``{name}`` in it is filled.
    """
    first_name = (name or "").split()[0] if name and name.strip() else ""
    return render(
        template or load("greeting.txt"),
        name=first_name,
        name_suffix=f" {first_name}" if first_name else "",
        name_comma=f", {first_name}" if first_name else "",
        company=company,
    ).replace(" ,", ",")


def instructions(caller_context: str, *, company: str = DEFAULT_COMPANY) -> str:
    return render(load("instructions.md"), caller_context=caller_context, company=company)


@cache
def _lines() -> dict[str, str]:
    return tomllib.loads(load("lines.toml"))


def line(key: str, *, company: str = DEFAULT_COMPANY, **values: str) -> str:
    """A fixed spoken line from ``prompts/lines.toml``."""
    return render(_lines()[key], company=company, **values)
