"""The numpy all-MiniLM-L6-v2: real sentence embeddings, and the settings that select it.

(Checked once by hand against sentence-transformers 6.2 + torch 2.15 on the same model
directory: cosine 1.0000 on every test sentence, max abs difference 1.5e-7.)
"""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.embeddings import LocalEmbedder, OpenAIEmbedder, build_embedder
from knowledge.local_model import DIMENSIONS, shared_encoder
from knowledge.settings import KnowledgeSettings
from voicedesk.config import SettingsError, load_settings


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_paraphrases_are_much_closer_than_unrelated_sentences() -> None:
    vectors = shared_encoder().encode(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "The weather in Paris is sunny today.",
            "Can I get my money back for an annual plan?",
            "What is your refund policy for yearly subscriptions?",
        ]
    )
    assert vectors.shape == (5, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    password, unrelated, refund = (
        _cos(vectors[0], vectors[1]),
        _cos(vectors[0], vectors[2]),
        _cos(vectors[3], vectors[4]),
    )
    assert password > 0.8 and refund > 0.45
    assert unrelated < 0.2
    assert password - unrelated > 0.5
    assert _cos(vectors[3], vectors[4]) > _cos(vectors[3], vectors[0])


def test_batching_and_padding_do_not_change_a_vector() -> None:
    encoder = shared_encoder()
    texts = ["short", "a much longer sentence that needs many more tokens than the first one does", ""]
    together = encoder.encode(texts, batch_size=3)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_long_texts_are_truncated_not_refused() -> None:
    vector = shared_encoder().encode(["refund " * 2000])
    assert vector.shape == (1, DIMENSIONS) and np.isfinite(vector).all()


async def test_local_embedder_is_an_embedder() -> None:
    embedder = build_embedder(KnowledgeSettings(_env_file=None, embedding_provider="local"))  # type: ignore[call-arg]
    assert isinstance(embedder, LocalEmbedder)
    assert (embedder.model, embedder.dimensions) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    vectors = await embedder.embed(["hello", "world"])
    assert len(vectors) == 2 and all(len(v) == 384 for v in vectors)
    assert await embedder.embed([]) == []


def test_local_provider_forces_384_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "local")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = KnowledgeSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.embedding_dimensions == 384  # no API key needed either
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "1536")
    with pytest.raises(ValueError, match="EMBEDDING_PROVIDER=local produces 384"):
        KnowledgeSettings(_env_file=None)  # type: ignore[call-arg]


def test_openai_provider_names_the_missing_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")  # no .env here
    for var in ("OPENAI_API_KEY", "EMBEDDING_PROVIDER", "EMBEDDING_DIMENSIONS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SettingsError):
        load_settings(KnowledgeSettings)
    message = capsys.readouterr().err
    assert "OPENAI_API_KEY is not set" in message and "EMBEDDING_PROVIDER=openai" in message
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "512")
    embedder = build_embedder(load_settings(KnowledgeSettings))
    assert isinstance(embedder, OpenAIEmbedder) and embedder.dimensions == 512
