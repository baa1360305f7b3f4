"""Deterministic stand-in for OpenAI embeddings: a normalised hashed bag of words.

Texts that share words (and, more weakly, character trigrams) get high cosine similarity,
so knowledge-base search behaves sensibly in tests without a model.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

DEFAULT_DIMENSIONS = 1536
_TRIGRAM_WEIGHT = 0.3


def _bucket(token: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimensions, (1.0 if (value >> 63) & 1 else -1.0)


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> np.ndarray:
    vec = np.zeros(dimensions, dtype=np.float32)
    tokens = re.findall(r"[a-z0-9]+", text.lower())
    for token in tokens:
        idx, sign = _bucket("w:" + token, dimensions)
        vec[idx] += sign
        padded = f"#{token}#"
        for i in range(len(padded) - 2):
            idx, sign = _bucket("t:" + padded[i : i + 3], dimensions)
            vec[idx] += sign * _TRIGRAM_WEIGHT
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:  # empty text: a fixed unit vector rather than NaNs
        vec[_bucket("<empty>", dimensions)[0]] = 1.0
        return vec
    return vec / norm
