"""Text → vector: the OpenAI-compatible API or the bundled local model, behind one protocol.

The ingester embeds chunks in batches and the agent embeds one query per search; both only see
:class:`Embedder`, so switching provider is a setting, not a code change.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from openai import AsyncOpenAI

from knowledge.settings import KnowledgeSettings


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into vectors of a fixed length, in input order."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class EmbeddingError(RuntimeError):
    """The provider answered, but not with what was asked (wrong count or length)."""


class OpenAIEmbedder:
    """``/v1/embeddings`` through the official SDK, so ``base_url`` reaches any compatible server.

    (``livekit.plugins.openai.create_embeddings`` ignores ``base_url``, hence not that.)
    """

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.dimensions = dimensions
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        # Only text-embedding-3 models take `dimensions` (ada-002 and many compatible servers
        # refuse it); for the others the returned length is checked against the setting below.
        extra = {"dimensions": self.dimensions} if "embedding-3" in self.model else {}
        response = await self._client.embeddings.create(
            model=self.model,
            input=[t if t.strip() else " " for t in texts],  # the API refuses empty strings
            encoding_format="float",
            **extra,  # type: ignore[arg-type]
        )
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingError(f"{self.model} returned {len(data)} embeddings for {len(texts)} texts")
        vectors = [list(d.embedding) for d in data]
        if any(len(v) != self.dimensions for v in vectors):
            got = next(len(v) for v in vectors if len(v) != self.dimensions)
            raise EmbeddingError(
                f"{self.model} returned {got}-dimensional vectors, EMBEDDING_DIMENSIONS={self.dimensions}: "
                "set EMBEDDING_DIMENSIONS to what the model produces"
            )
        return vectors

    async def aclose(self) -> None:
        await self._client.close()


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU (see :mod:`knowledge.local_model`); no network, 384 dimensions.

    The forward pass runs in a worker thread so an agent's event loop keeps serving audio.
    """

    def __init__(self, batch_size: int = 32) -> None:
        from knowledge.local_model import DIMENSIONS, MODEL_NAME

        self._batch_size = batch_size
        self.model = MODEL_NAME
        self.dimensions = DIMENSIONS

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        from knowledge.local_model import shared_encoder

        def run() -> list[list[float]]:
            return shared_encoder().encode(texts, batch_size=self._batch_size).tolist()

        return await asyncio.to_thread(run)

    def warm_up(self) -> None:
        """Load the weights now (e.g. in a worker's prewarm) rather than on the first query."""
        from knowledge.local_model import shared_encoder

        shared_encoder()

    async def aclose(self) -> None:
        return None


def build_embedder(settings: KnowledgeSettings) -> OpenAIEmbedder | LocalEmbedder:
    """The embedder the settings ask for."""
    if settings.embedding_provider == "local":
        return LocalEmbedder()
    assert settings.openai_api_key is not None  # enforced by KnowledgeSettings
    return OpenAIEmbedder(
        api_key=settings.openai_api_key.get_secret_value(),
        model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        base_url=settings.openai_base_url,
    )
