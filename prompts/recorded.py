"""Lines prepared as audio ahead of time, for when no text-to-speech provider answers.

The WAVs in ``prompts/audio/`` are rendered from ``lines.toml`` by espeak-ng at build time and
committed, so playing them needs no provider, no network and no synthesis at call time. A
provider-rendered cache would sound nicer, but would be missing exactly when the providers are
down; these are heard rarely, when saying something beats saying nothing.

Render again after editing a line:  ``python -m prompts.recorded``
"""

from __future__ import annotations

import json
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

from livekit import rtc

from prompts import PROMPTS_DIR, line

AUDIO_DIR = PROMPTS_DIR / "audio"
MANIFEST = AUDIO_DIR / "manifest.json"  # name -> the text each WAV was rendered from
RECORDED = ("outage_callback", "outage_transfer")
FRAME_MS = 20


def path(name: str) -> Path:
    return AUDIO_DIR / f"{name}.wav"


async def frames(name: str) -> AsyncIterator[rtc.AudioFrame]:
    """The recorded line as 20 ms frames, for ``session.say(text, audio=...)``."""
    with wave.open(str(path(name))) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        per_frame = rate * FRAME_MS // 1000
        while data := wav.readframes(per_frame):
            yield rtc.AudioFrame(data, rate, channels, len(data) // (2 * channels))


def render() -> None:
    """espeak-ng (16-bit mono, 22.05 kHz) for every recorded line, and the manifest."""
    AUDIO_DIR.mkdir(exist_ok=True)
    texts = {name: line(name) for name in RECORDED}
    for name, text in texts.items():
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(path(name)), text], check=True)
    MANIFEST.write_text(json.dumps(texts, indent=2) + "\n")


if __name__ == "__main__":
    render()
    print(f"rendered {', '.join(RECORDED)} into {AUDIO_DIR}")
