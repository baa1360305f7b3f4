"""Question → passages: embed the query with the configured model and run the hybrid search.

The agent's knowledge tool and `voicedesk kb search` both go through here, so the query is
always embedded by the same model that embedded the chunks (checked, see :mod:`db.kb`).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from db import kb
from knowledge.embeddings import Embedder


async def search_knowledge(
    pool: AsyncConnectionPool,
    embedder: Embedder,
    query: str,
    *,
    caller_tier: str | None,
    limit: int = 5,
    min_similarity: float | None = None,
) -> list[kb.Passage]:
    """Passages for ``query`` that ``caller_tier`` may see, best first.

    ``min_similarity`` (KB_MIN_SIMILARITY) drops passages that only matched weakly, so the
    agent says it does not know rather than reading out something unrelated.
    """
    [vector] = await embedder.embed([query])
    passages = await kb.search(
        pool,
        query_embedding=vector,
        query_text=query,
        caller_tier=caller_tier,
        limit=limit,
        embedding_model=embedder.model,
    )
    if min_similarity is not None:
        passages = [p for p in passages if p.similarity >= min_similarity]
    return passages
