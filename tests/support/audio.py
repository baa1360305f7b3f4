"""Real speech for tests: espeak-ng speaks, sox converts; numpy measures loudness."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 48000


def synthesize(text: str, path: Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``text`` spoken by espeak-ng as 16-bit mono WAV at ``sample_rate``."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(sample_rate), "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def rms(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
