"""Repository for the knowledge base: documents, chunks, the embedding config and hybrid search.

The vector column's dimension follows the configuration (see :func:`ensure_embedding_config`),
and vectors of one model are never compared with another's: a mismatch raises
:class:`EmbeddingMismatchError` rather than returning a silently wrong search.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool


class EmbeddingMismatchError(RuntimeError):
    """The stored embeddings come from another model or dimension than the configured one."""

    def __init__(
        self, *, stored_model: str | None, stored_dimensions: int, model: str, dimensions: int
    ) -> None:
        self.stored_model = stored_model
        self.stored_dimensions = stored_dimensions
        self.model = model
        self.dimensions = dimensions
        stored = f"{stored_model or 'an unrecorded model'} with {stored_dimensions} dimensions"
        super().__init__(
            f"the knowledge base holds embeddings from {stored}, but the configuration asks for "
            f"EMBEDDING_MODEL={model} with EMBEDDING_DIMENSIONS={dimensions}. Vectors of different "
            "models cannot be compared. Either re-embed everything with the new settings "
            "(`voicedesk kb ingest --reembed PATH...`) or restore EMBEDDING_PROVIDER/EMBEDDING_MODEL/"
            f"EMBEDDING_DIMENSIONS to {stored_model or '?'}/{stored_dimensions}."
        )


@dataclass(frozen=True)
class Passage:
    """One search hit, as the agent reads it."""

    title: str
    source: str
    heading: str
    content: str
    similarity: float  # 1 - cosine distance to the query embedding
    text_rank: float  # ts_rank_cd of the full-text match, 0 when the words did not match
    score: float  # reciprocal-rank-fusion score: what the results are ordered by
    chunk_id: int | None = None
    document_id: uuid.UUID | None = None


@dataclass(frozen=True)
class StoredDocument:
    id: uuid.UUID
    source: str
    title: str
    content_hash: str
    tiers: tuple[str, ...]
    metadata: dict[str, Any]
    chunk_count: int
    updated_at: datetime


@dataclass(frozen=True)
class NewChunk:
    index: int
    heading: str
    content: str
    embedding: Sequence[float]


@dataclass(frozen=True)
class EmbeddingConfig:
    model: str
    dimensions: int


_DOCUMENT_COLUMNS = """
    d.id, d.source, d.title, d.content_hash, d.tiers, d.metadata, d.updated_at,
    (select count(*) from kb_chunks c where c.document_id = d.id)::int as chunk_count
"""


def _document(row: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        content_hash=row["content_hash"],
        tiers=tuple(row["tiers"]),
        metadata=row["metadata"],
        chunk_count=row["chunk_count"],
        updated_at=row["updated_at"],
    )


def _vector(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


async def get_document(pool: AsyncConnectionPool, source: str) -> StoredDocument | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"select {_DOCUMENT_COLUMNS} from kb_documents d where d.source = %s", (source,)
        )
        row = await cur.fetchone()
    return _document(row) if row else None


async def list_documents(pool: AsyncConnectionPool) -> list[StoredDocument]:
    async with pool.connection() as conn:
        cur = await conn.execute(f"select {_DOCUMENT_COLUMNS} from kb_documents d order by d.source")
        return [_document(row) for row in await cur.fetchall()]


async def replace_document(
    pool: AsyncConnectionPool,
    *,
    source: str,
    title: str,
    content_hash: str,
    tiers: Sequence[str],
    metadata: dict[str, Any],
    chunks: Sequence[NewChunk],
) -> uuid.UUID:
    """Insert or replace a document and all its chunks in one transaction.

    A concurrent search sees either the old chunks or the new ones, never a mix or none.
    """
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            """
            insert into kb_documents (source, title, content_hash, tiers, metadata)
            values (%s, %s, %s, %s, %s)
            on conflict (source) do update
              set title = excluded.title, content_hash = excluded.content_hash,
                  tiers = excluded.tiers, metadata = excluded.metadata, updated_at = now()
            returning id
            """,
            (source, title, content_hash, list(tiers), Jsonb(metadata)),
        )
        row = await cur.fetchone()
        assert row is not None
        document_id: uuid.UUID = row["id"]
        await conn.execute("delete from kb_chunks where document_id = %s", (document_id,))
        async with conn.cursor() as cur:
            await cur.executemany(
                "insert into kb_chunks (document_id, chunk_index, heading, content, embedding)"
                " values (%s, %s, %s, %s, %s)",
                [(document_id, c.index, c.heading, c.content, _vector(c.embedding)) for c in chunks],
            )
    return document_id


async def remove_documents(pool: AsyncConnectionPool, sources: Sequence[str]) -> list[str]:
    """Delete documents (their chunks cascade); returns the sources that existed."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "delete from kb_documents where source = any(%s) returning source", (list(sources),)
        )
        return sorted(row["source"] for row in await cur.fetchall())


async def remove_all(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("delete from kb_documents")
        return cur.rowcount


async def count_chunks(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("select count(*)::int as n from kb_chunks")
        row = await cur.fetchone()
    return row["n"] if row else 0


async def get_embedding_config(pool: AsyncConnectionPool) -> EmbeddingConfig | None:
    """What the stored embeddings are (None before the first ingest)."""
    async with pool.connection() as conn:
        return await _stored_config(conn)


async def _stored_config(conn: AsyncConnection[Any]) -> EmbeddingConfig | None:
    cur = await conn.execute("select model, dimensions from kb_embedding_config")
    row = await cur.fetchone()
    return EmbeddingConfig(row["model"], row["dimensions"]) if row else None


async def _column_dimensions(conn: AsyncConnection[Any]) -> int:
    # For pgvector's `vector(n)` the type modifier is n itself.
    cur = await conn.execute(
        "select atttypmod from pg_attribute"
        " where attrelid = 'public.kb_chunks'::regclass and attname = 'embedding'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["atttypmod"])


async def _has_chunks(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute("select exists (select 1 from kb_chunks) as found")
    row = await cur.fetchone()
    return bool(row and row["found"])


async def ensure_embedding_config(
    pool: AsyncConnectionPool, model: str, dimensions: int, *, reset: bool = False
) -> None:
    """Make the store ready for ``model``/``dimensions`` before ingesting, or refuse.

    Empty knowledge base: the vector column is retyped to ``vector(dimensions)`` (HNSW index
    rebuilt) if needed and the model recorded. Non-empty with another model or dimension:
    :class:`EmbeddingMismatchError`. ``reset`` first deletes every document (``--reembed``).
    """
    async with pool.connection() as conn, conn.transaction():
        # One ingester at a time decides the column type; searches keep running meanwhile.
        await conn.execute("lock table kb_embedding_config in exclusive mode")
        if reset:
            await conn.execute("delete from kb_documents")
        stored = await _stored_config(conn)
        column = await _column_dimensions(conn)
        if await _has_chunks(conn):
            if stored is None:  # chunks written before the config existed: trust the column
                stored = EmbeddingConfig(model, column) if column == dimensions else None
            if stored is None or stored != EmbeddingConfig(model, dimensions) or column != dimensions:
                raise EmbeddingMismatchError(
                    stored_model=stored.model if stored else None,
                    stored_dimensions=stored.dimensions if stored else column,
                    model=model,
                    dimensions=dimensions,
                )
        elif column != dimensions:
            await conn.execute("drop index if exists public.kb_chunks_embedding_idx")
            vector_type = f"extensions.vector({int(dimensions)})"
            await conn.execute(f"alter table public.kb_chunks alter column embedding type {vector_type}")  # type: ignore[arg-type]  # an int, not user text
            await conn.execute(
                "create index kb_chunks_embedding_idx on public.kb_chunks"
                " using hnsw (embedding extensions.vector_cosine_ops)"
            )
        await conn.execute(
            """
            insert into kb_embedding_config (id, model, dimensions) values (true, %s, %s)
            on conflict (id) do update set model = excluded.model, dimensions = excluded.dimensions,
                updated_at = now()
            where (kb_embedding_config.model, kb_embedding_config.dimensions)
                  is distinct from (excluded.model, excluded.dimensions)
            """,
            (model, dimensions),
        )
    _verified.clear()


# (pool, model, dimensions) combinations already found to match the store in this process.
_verified: set[tuple[int, str | None, int]] = set()


async def check_embedding_config(pool: AsyncConnectionPool, model: str | None, dimensions: int) -> bool:
    """Raise :class:`EmbeddingMismatchError` if stored chunks were embedded differently.

    Returns False when the knowledge base is empty (nothing to search). A match is cached for
    the life of the process; ``model`` None checks the dimension only.
    """
    key = (id(pool), model, dimensions)
    if key in _verified:
        return True
    async with pool.connection() as conn:
        if not await _has_chunks(conn):
            return False
        stored = await _stored_config(conn)
        column = await _column_dimensions(conn)
    stored_dims = stored.dimensions if stored else column
    if (
        stored_dims != dimensions
        or column != dimensions
        or (model is not None and stored is not None and stored.model != model)
    ):
        raise EmbeddingMismatchError(
            stored_model=stored.model if stored else None,
            stored_dimensions=stored_dims,
            model=model or "(unknown)",
            dimensions=dimensions,
        )
    _verified.add(key)
    return True


async def search(
    pool: AsyncConnectionPool,
    *,
    query_embedding: Sequence[float],
    query_text: str,
    caller_tier: str | None,
    limit: int = 5,
    embedding_model: str | None = None,
) -> list[Passage]:
    """Hybrid search through ``match_kb_chunks`` (the same function Supabase clients call by RPC).

    ``caller_tier`` None = unidentified caller: public documents only. Pass ``embedding_model``
    to have the model checked too, not just the dimension.
    """
    if not await check_embedding_config(pool, embedding_model, len(query_embedding)):
        return []
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "select * from match_kb_chunks(%s, %s, %s, %s)",
                (_vector(query_embedding), query_text, caller_tier, limit),
            )
            rows = await cur.fetchall()
    except psycopg.errors.DataException:
        # The store changed under this process (e.g. re-embedded by another): say so plainly.
        _verified.clear()
        await check_embedding_config(pool, embedding_model, len(query_embedding))
        raise
    return [
        Passage(
            title=r["title"],
            source=r["source"],
            heading=r["heading"],
            content=r["content"],
            similarity=float(r["similarity"]),
            text_rank=float(r["text_rank"]),
            score=float(r["score"]),
            chunk_id=r["chunk_id"],
            document_id=r["document_id"],
        )
        for r in rows
    ]
