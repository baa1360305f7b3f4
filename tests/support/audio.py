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


FRAME_S = 0.010  # envelope resolution for find_speech and locate
SPEECH_RMS = 300.0  # int16 RMS well above silence, G.711 idle noise and comfort noise


def envelope(samples: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS of consecutive ``frame_s`` frames (int16 units); a trailing partial frame is dropped."""
    step = max(1, round(rate * frame_s))
    n = samples.size // step
    frames = samples[: n * step].astype(np.float64).reshape(n, step)
    return np.sqrt(np.mean(frames**2, axis=1))


def find_speech(
    samples: np.ndarray,
    rate: int,
    threshold: float = SPEECH_RMS,
    *,
    min_gap_s: float = 0.3,
    min_speech_s: float = 0.1,
) -> list[tuple[float, float]]:
    """Speech segments ``(start_s, end_s)`` where the 10 ms RMS envelope exceeds ``threshold``.

    Pauses shorter than ``min_gap_s`` (between words) are bridged, so one utterance is one
    segment; bursts shorter than ``min_speech_s`` (clicks, codec artefacts) are dropped.
    """
    loud = envelope(samples, rate) > threshold
    segments: list[list[int]] = []
    for i in np.flatnonzero(loud).tolist():
        if segments and i - segments[-1][1] <= min_gap_s / FRAME_S:
            segments[-1][1] = i + 1
        else:
            segments.append([i, i + 1])
    return [
        (round(a * FRAME_S, 3), round(b * FRAME_S, 3))
        for a, b in segments
        if (b - a) * FRAME_S >= min_speech_s
    ]


def _log_envelope(samples: np.ndarray, rate: int) -> np.ndarray:
    # dB with a floor ~60 dB below full scale: codec noise and digital silence look alike.
    return 20 * np.log10(np.maximum(envelope(samples, rate), 30.0))


def locate(haystack: np.ndarray, needle: np.ndarray, rate: int) -> tuple[float, float]:
    """Where ``needle`` (a reference utterance) best occurs in ``haystack``: ``(offset_s, score)``.

    Compares 10 ms log-RMS envelopes, not waveforms, so it survives what a phone call does to
    speech (resampling, Opus, G.711, level changes, small delays between frames): the score is
    the Pearson correlation of the needle's envelope with the haystack's envelope at the best
    offset, clipped to [0, 1]. Both arrays are int16 samples at ``rate``; if the haystack is
    shorter than the needle it is padded with silence.
    """
    ref = _log_envelope(needle, rate)
    hay = _log_envelope(haystack, rate)
    m = ref.size
    if m < 2:
        raise ValueError("needle shorter than two 10 ms frames")
    if hay.size < m:
        hay = np.concatenate([hay, np.full(m - hay.size, 20 * np.log10(30.0))])
    ref = ref - ref.mean()
    ref_norm = np.sqrt(np.sum(ref**2))
    if ref_norm == 0:
        raise ValueError("needle has a flat envelope (silence?)")
    dots = np.correlate(hay, ref, mode="valid")  # sum(hay[k:k+m] * ref) for each offset k
    csum = np.concatenate([[0.0], np.cumsum(hay)])
    csum2 = np.concatenate([[0.0], np.cumsum(hay**2)])
    win_sum = csum[m:] - csum[:-m]
    win_var = np.maximum(csum2[m:] - csum2[:-m] - win_sum**2 / m, 0.0)
    denom = np.sqrt(win_var) * ref_norm
    corr = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 1e-9)
    best = int(np.argmax(corr))
    return round(best * FRAME_S, 3), float(np.clip(corr[best], 0.0, 1.0))
