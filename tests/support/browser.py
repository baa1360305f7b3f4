"""Debian's Chromium driven by PyPI playwright, with a fake microphone playing a WAV once.

Playwright never downloads a browser here: it launches `/usr/bin/chromium` (installed by
`make`). The flags keep Chromium off the network it cannot reach and grant the microphone
without a prompt; ``%noloop`` makes the fake microphone play its file once, then silence.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@asynccontextmanager
async def chromium(
    microphone: Path | None = None, *, allow_microphone: bool = True
) -> AsyncIterator[Browser]:
    """A headless Chromium; ``microphone``: a 48 kHz WAV it hears once, from when the mic opens.
    ``allow_microphone=False``: the permission prompt is refused, as a person clicking Block."""
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} is missing: run the tests with `make test`, which installs it")
    flags = [f for f in FLAGS if allow_microphone or f != "--use-fake-ui-for-media-stream"]
    with tempfile.TemporaryDirectory() as tmp:
        if microphone is None:  # Chromium's own fake device beeps, which the agent hears as speech
            microphone = Path(tmp) / "silence.wav"
            silence = ["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(microphone), "trim", "0", "1"]
            await asyncio.to_thread(subprocess.run, silence, check=True)
        flags.append(f"--use-file-for-fake-audio-capture={microphone}%noloop")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
            try:
                yield browser
            finally:
                await browser.close()
