"""Load a pydantic-settings object or stop the process with a message a person can act on.

Both services call :func:`load_settings` at start-up so that a missing or malformed variable
names itself, says what it is for and shows an example, instead of a pydantic traceback.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, TypeVar

from pydantic import BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, NoDecode

S = TypeVar("S", bound=BaseSettings)


def split_commas(value: object) -> object:
    """Accept ``a,b , c`` from the environment (pydantic-settings would expect JSON for lists)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list setting written as ``A,B,C`` in the environment.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]

_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def check_agent_name(name: str) -> str:
    """The names LiveKit dispatch accepts for agents, checked before a dispatch ever fails."""
    if not _AGENT_NAME.match(name):
        raise ValueError(f"{name!r}: agent names are 1-64 letters, digits, '_', '.' or '-'")
    return name


class SettingsError(SystemExit):
    """Raised (as a SystemExit, so it stops the process cleanly) when settings are invalid."""


def describe_errors(cls: type[BaseSettings], error: ValidationError) -> str:
    prefix = cls.model_config.get("env_prefix", "") or ""
    lines = [f"voicedesk: invalid configuration for {cls.__name__}:"]
    for err in error.errors():
        field_name = str(err["loc"][0]) if err["loc"] else ""
        field = cls.model_fields.get(field_name)
        alias = field.validation_alias if field is not None else None
        names = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else None)
        var = " or ".join(str(n) for n in names) if names else (prefix + field_name).upper()
        problem = "is not set" if err["type"] == "missing" else f"is invalid: {err['msg']}"
        lines.append(f"  {var} {problem}")
        if field is not None and field.description:
            lines.append(f"      what it is for: {field.description}")
        if field is not None and field.examples:
            lines.append(f"      example: {var}={field.examples[0]}")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Instantiate ``cls`` from the environment and ``.env``; exit with a named error if invalid."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        print(describe_errors(cls, exc), file=sys.stderr)
        raise SettingsError(2) from None
