"""The lines prepared as audio (played when no TTS provider answers) match their text."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

import prompts
from prompts import recorded


@pytest.mark.parametrize("name", recorded.RECORDED)
async def test_recorded_line_is_current_speech(name: str) -> None:
    # Rendered from today's text: editing lines.toml without `python -m prompts.recorded` fails here.
    assert json.loads(recorded.MANIFEST.read_text())[name] == prompts.line(name)
    with wave.open(str(recorded.path(name))) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
    frames = [f async for f in recorded.frames(name)]
    pcm = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]).astype(np.float32) / 32768
    seconds = len(pcm) / frames[0].sample_rate
    words = len(prompts.line(name).split())
    assert words / 4.5 < seconds < words / 1.5, f"{seconds:.1f} s for {words} words"
    assert float(np.sqrt(np.mean(pcm**2))) > 0.02  # speech, not silence
    assert all(f.samples_per_channel == frames[0].sample_rate // 50 for f in frames[:-1])  # 20 ms frames
