"""Real speech for the TTS emulators: espeak-ng synthesis, sox resampling, optional MP3.

Downstream tests assert that the agent *speaks* (non-silent audio of plausible length), so
the emulator must return actual speech, not tones or zeros. Results are cached per
(text, rate) because agents repeat greetings and tests repeat phrases.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict

import numpy as np

ESPEAK = "espeak-ng"
SOX = "sox"
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()


def clean_text(text: str) -> str:
    """Drop markup that espeak would read out literally (SSML tags, markdown emphasis)."""
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"[*_#`~]+", " ", text)
    return " ".join(text.split())


async def synthesize_pcm(text: str, sample_rate: int) -> bytes:
    """16-bit little-endian mono PCM of ``text`` spoken by espeak-ng at ``sample_rate``."""
    text = clean_text(text)
    if not text:
        return b""
    key = (text, sample_rate)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    espeak = await asyncio.create_subprocess_exec(
        ESPEAK,
        "-v",
        "en-us",
        "--stdout",
        "--stdin",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    wav, _ = await espeak.communicate(text.encode())
    if espeak.returncode != 0 or not wav:
        raise RuntimeError(f"espeak-ng failed ({espeak.returncode}) for {text!r}")
    sox = await asyncio.create_subprocess_exec(
        SOX,
        "-q",
        "-t",
        "wav",
        "-",
        "-t",
        "raw",
        "-r",
        str(sample_rate),
        "-e",
        "signed",
        "-b",
        "16",
        "-c",
        "1",
        "-L",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    pcm, err = await sox.communicate(wav)
    if sox.returncode != 0:
        raise RuntimeError(f"sox failed: {err.decode(errors='replace')}")
    _cache[key] = pcm
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return pcm


def parse_output_format(fmt: str) -> tuple[str, int, int]:
    """ElevenLabs ``output_format`` (``pcm_24000``, ``mp3_22050_32``) -> (codec, rate, kbps)."""
    parts = fmt.split("_")
    if parts[0] not in ("pcm", "mp3") or len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"unsupported output_format {fmt!r} (emulated: pcm_<rate>, mp3_<rate>_<kbps>)")
    kbps = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 128
    return parts[0], int(parts[1]), kbps


def encode_mp3(pcm: bytes, sample_rate: int, kbps: int) -> bytes:
    """Raw MP3 frames (no ID3/Xing header) so chunks from several generations concatenate.

    Uses PyAV's bundled libmp3lame (PyAV ships with livekit-agents); CPU-bound, so callers
    run it in a thread.
    """
    import av  # only needed when a client asks for mp3

    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate = sample_rate
    codec.layout = "mono"
    codec.format = av.AudioFormat("s16p")
    codec.bit_rate = kbps * 1000
    codec.open()
    samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
    frame_size = codec.frame_size or 1152
    out = bytearray()
    for start in range(0, samples.shape[1], frame_size):
        chunk = samples[:, start : start + frame_size]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16p", layout="mono")
        frame.sample_rate = sample_rate
        for packet in codec.encode(frame):
            out += bytes(packet)
    for packet in codec.encode(None):
        out += bytes(packet)
    return bytes(out)


async def synthesize(text: str, output_format: str) -> tuple[bytes, float]:
    """Encoded audio for ``text`` in ``output_format`` and its duration in seconds."""
    codec, rate, kbps = parse_output_format(output_format)
    pcm = await synthesize_pcm(text, rate)
    duration = len(pcm) / 2 / rate
    if codec == "mp3" and pcm:
        return await asyncio.to_thread(encode_mp3, pcm, rate, kbps), duration
    return pcm, duration


def chunk_bytes(data: bytes, duration: float, chunk_s: float = 0.1) -> list[tuple[bytes, float]]:
    """Split encoded audio into ~``chunk_s`` pieces, each with the audio time it ends at."""
    if not data:
        return []
    n = max(1, round(duration / chunk_s))
    size = -(-len(data) // n)
    if size % 2:
        size += 1  # never split a 16-bit sample
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [(p, duration * min(1.0, (i + 1) * size / len(data))) for i, p in enumerate(pieces)]
