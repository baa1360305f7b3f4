"""`python -m agent console --text` in a real terminal (tmux) answers a typed question."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
import uuid

from tests.support.processes import REPO_ROOT
from tests.support.provider_emulators import ProviderEmulators

ANSWER = "Our support line is open around the clock."


def _screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", session],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _wait_screen(session: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _screen(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared on the console:\n{_screen(session)}")


def test_console_text_mode_answers_a_typed_question(
    provider_emulators: ProviderEmulators, database_url: str
) -> None:
    provider_emulators.reset()
    provider_emulators.script(llm=[{"text": ANSWER}])
    env = {
        **provider_emulators.env(),
        "DATABASE_URL": database_url,
        "APP_ENV": "dev",
        "LIVEKIT_URL": "ws://127.0.0.1:7880",  # console mode never connects
        "LIVEKIT_API_KEY": "console",
        "LIVEKIT_API_SECRET": "console-secret-not-used-0123456789",
    }
    command = " ".join(
        [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        + [shlex.quote(sys.executable), "-m", "agent", "console", "--text"]
    )
    session = f"console-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            str(REPO_ROOT),
            f"env {command}",
        ],
        check=True,
    )
    try:
        _wait_screen(session, "thanks for calling", timeout=60)  # the greeting, as text
        subprocess.run(["tmux", "send-keys", "-t", session, "When can I reach support?", "Enter"], check=True)
        _wait_screen(session, ANSWER, timeout=30)
        asked = [e for e in provider_emulators.log("llm") if "When can I reach support?" in str(e)]
        assert asked, "the typed question never reached the LLM"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
