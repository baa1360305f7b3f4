"""Knowledge-base settings: embeddings, chunking and search, shared by the agent and the CLI.

Load with ``voicedesk.config.load_settings(KnowledgeSettings)`` so a bad value names itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
# pgvector indexes (HNSW) take at most 2000 dimensions of type `vector`.
MAX_INDEXED_DIMENSIONS = 2000


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    embedding_provider: Literal["openai", "local"] = Field(
        default="openai",
        description="Who computes embeddings: `openai` (any OpenAI-compatible /v1/embeddings server) "
        "or `local` (all-MiniLM-L6-v2 on this machine's CPU, no API calls, 384 dimensions).",
        examples=["local"],
    )
    embedding_model: str = Field(
        default="text-embedding-3-small",
        description="Embedding model name sent to the OpenAI-compatible server (ignored by `local`).",
        examples=["text-embedding-3-small"],
    )
    embedding_dimensions: int = Field(
        default=1536,
        ge=1,
        le=MAX_INDEXED_DIMENSIONS,
        description="Vector length requested from the model and stored in kb_chunks.embedding; "
        "the local model always uses 384. Changing it needs `voicedesk kb ingest --reembed`.",
        examples=[1536],
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="API key of the OpenAI-compatible embeddings server; required when "
        "EMBEDDING_PROVIDER=openai.",
        examples=["sk-proj-..."],
    )
    openai_base_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible server (Ollama, vLLM, ...); unset = OpenAI.",
        examples=["http://127.0.0.1:11434/v1"],
    )
    embedding_batch_size: int = Field(
        default=64,
        ge=1,
        le=2048,
        description="Texts per embeddings request while ingesting (OpenAI accepts up to 2048).",
        examples=[64],
    )
    kb_chunk_max_chars: int = Field(
        default=900,
        ge=200,
        le=8000,
        description="Upper bound on a chunk's length in characters (~200 tokens at the default): "
        "small enough to read out, large enough to carry an answer.",
        examples=[900],
    )
    kb_chunk_overlap_chars: int = Field(
        default=150,
        ge=0,
        description="Characters of trailing sentences repeated at the start of the next chunk, so "
        "an answer that straddles a boundary is still found; below half of KB_CHUNK_MAX_CHARS.",
        examples=[150],
    )
    kb_min_similarity: float = Field(
        default=0.25,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which the agent does not use a passage. With "
        "text-embedding-3-small unrelated text scores about 0.0-0.2 and relevant passages 0.3-0.7; "
        "all-MiniLM-L6-v2 scores similarly.",
        examples=[0.25],
    )
    kb_search_limit: int = Field(
        default=5, ge=1, le=50, description="Passages returned per knowledge-base search.", examples=[5]
    )

    @field_validator("openai_api_key")
    @classmethod
    def _key_when_openai(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and info.data.get("embedding_provider", "openai") == "openai":
            # type "missing" so the start-up message reads "OPENAI_API_KEY is not set".
            raise PydanticCustomError("missing", "required when EMBEDDING_PROVIDER=openai")
        return value

    @field_validator("kb_chunk_overlap_chars")
    @classmethod
    def _overlap_below_half(cls, value: int, info: ValidationInfo) -> int:
        max_chars = info.data.get("kb_chunk_max_chars")
        if max_chars is not None and value * 2 > max_chars:
            raise ValueError(f"must be at most half of KB_CHUNK_MAX_CHARS ({max_chars})")
        return value

    @model_validator(mode="after")
    def _local_model_is_fixed(self) -> KnowledgeSettings:
        """The local provider has one model of 384 dimensions; refuse a contradicting explicit value."""
        if self.embedding_provider != "local":
            return self
        if "embedding_dimensions" in self.model_fields_set and self.embedding_dimensions != LOCAL_DIMENSIONS:
            raise ValueError(
                f"EMBEDDING_DIMENSIONS={self.embedding_dimensions} but EMBEDDING_PROVIDER=local "
                f"produces {LOCAL_DIMENSIONS}: unset EMBEDDING_DIMENSIONS or set it to {LOCAL_DIMENSIONS}"
            )
        self.embedding_model = LOCAL_MODEL
        self.embedding_dimensions = LOCAL_DIMENSIONS
        return self

    def describe(self) -> dict[str, Any]:
        """What the embeddings are, for logs and `kb list` (no secrets)."""
        return {
            "provider": self.embedding_provider,
            "model": self.embedding_model,
            "dimensions": self.embedding_dimensions,
            "base_url": self.openai_base_url,
        }
