"""The web page as the Chromium tests use it: sign in, find transcript lines, take screenshots."""

from __future__ import annotations

import subprocess
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from tests.support.audio import synthesize
from tests.support.processes import REPO_ROOT

SHOTS = REPO_ROOT / "docs" / "screenshots"
PHONE_SIZE = {"width": 390, "height": 844}
DESKTOP_SIZE = {"width": 1280, "height": 900}


def microphone(tmp_path: Path, text: str, lead_s: float) -> Path:
    """``lead_s`` of silence (the greeting plays meanwhile), then ``text``, at 48 kHz."""
    speech = synthesize(text, tmp_path / "speech.wav")
    wav = tmp_path / "microphone.wav"
    subprocess.run(["sox", str(speech), str(wav), "pad", str(lead_s), "2"], check=True)
    return wav


async def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    await page.goto(base_url)
    await page.get_by_test_id("signin-email").fill(email)
    await page.get_by_test_id("signin-password").fill(password)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("call-button")).to_be_visible(timeout=15_000)


def agent_line(page: Page, text: str) -> Locator:
    """A final line of the agent's in the Call AI transcript."""
    return page.locator(
        '[data-testid="transcript-line"][data-role="agent"][data-final="true"]', has_text=text
    )


async def shot(page: Page, name: str) -> None:
    """A screenshot for the README, in docs/screenshots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
