"""Prompt texts live in files next to this module so they can be edited without touching code."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROMPTS_DIR = Path(__file__).resolve().parent
DEFAULT_PERSONA_FILE = PROMPTS_DIR / "persona.toml"
MAX_REPLY_WORDS = 200  # the longest reply a caller hears; the instructions say so too


@cache
def load(name: str) -> str:
    """Return the text of ``prompts/<name>`` (read once per process)."""
    return (PROMPTS_DIR / name).read_text(encoding="utf-8").strip()


class Persona(BaseModel):
    """Who the agent is: its company, its name and its tone (``prompts/persona.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    company: str = Field(min_length=1, max_length=80)
    agent_name: str = Field(min_length=1, max_length=40)
    tone: str = Field(min_length=1, max_length=300)


def load_persona(path: Path) -> Persona:
    """Read a persona file; a bad one raises ValueError naming the file and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"persona file {path}: {exc}") from exc
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"persona file {path}: {problems}") from exc


_persona: Persona | None = None


def persona() -> Persona:
    """The persona in use: the one `use_persona` chose, else ``prompts/persona.toml``."""
    global _persona
    if _persona is None:
        _persona = load_persona(DEFAULT_PERSONA_FILE)
    return _persona


def use_persona(path: Path | None) -> Persona:
    """Choose the persona file for this process (PERSONA_FILE); None: the default one."""
    global _persona
    _persona = load_persona(path or DEFAULT_PERSONA_FILE)
    return _persona


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, **values: str) -> str:
    """Fill ``{placeholders}``; unknown ones become empty instead of raising."""
    return template.format_map(_Blank(values))


def greeting(name: str | None, *, template: str | None = None, company: str | None = None) -> str:
    """The first thing the caller hears, with their name when we know it.

    ``template`` is the user's own greeting from their settings; ``{name}`` in it is filled.
    """
    first_name = (name or "").split()[0] if name and name.strip() else ""
    return render(
        template or load("greeting.txt"),
        name=first_name,
        name_suffix=f" {first_name}" if first_name else "",
        name_comma=f", {first_name}" if first_name else "",
        company=company or persona().company,
        agent_name=persona().agent_name,
    ).replace(" ,", ",")


def instructions(caller_context: str, *, company: str | None = None, max_words: int = MAX_REPLY_WORDS) -> str:
    who = persona()
    return render(
        load("instructions.md"),
        caller_context=caller_context,
        company=company or who.company,
        agent_name=who.agent_name,
        tone=who.tone,
        max_words=str(max_words),
    )


@cache
def _lines() -> dict[str, str]:
    return tomllib.loads(load("lines.toml"))


def line(key: str, *, company: str | None = None, **values: str) -> str:
    """A fixed spoken line from ``prompts/lines.toml``."""
    who = persona()
    return render(
        _lines()[key], **{"company": company or who.company, "agent_name": who.agent_name, **values}
    )
