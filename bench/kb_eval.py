"""Retrieval quality of the knowledge base: does the right document come back for a caller's question?

Ingests ``kb/demo`` into a scratch database with the local embedding model (no API key, same
vectors on every machine), asks every question of ``kb/questions.jsonl`` with the question's
caller tier, and reports recall@1 and recall@5 over distinct documents, for the hybrid search
the agent uses (``db.kb.search`` → ``match_kb_chunks``) and, to show what each half contributes,
for its semantic half (HNSW cosine) and its full-text half (all of the question's words) alone.
"agent@5" is what the agent
actually gets: whether the answering document is among the ``KB_SEARCH_LIMIT`` passages of one
search call. Every result is also checked against the caller's tier (a leak fails the run).

    python -m bench.kb_eval [--questions kb/questions.jsonl] [--kb kb/demo]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    bench_server,
    environment,
    percentiles,
    scratch_database,
    server_info,
    table,
    write_result,
)

ROOT = Path(__file__).resolve().parent.parent
DEPTH = 20  # chunks fetched per query to rank distinct documents
CANDIDATES = DEPTH * 4  # per half, as match_kb_chunks takes match_count * 4 from each

SEMANTIC_SQL = """
    select c.id, d.source from kb_chunks c join kb_documents d on d.id = c.document_id
    where cardinality(d.tiers) = 0 or %s = any (d.tiers)
    order by c.embedding <=> %s limit %s
"""
FULLTEXT_SQL = """
    with words as (select websearch_to_tsquery('english', %s) as query)  -- as match_kb_chunks
    select c.id, d.source from kb_chunks c join kb_documents d on d.id = c.document_id, words
    where c.fts @@ words.query and (cardinality(d.tiers) = 0 or %s = any (d.tiers))
    order by ts_rank_cd(c.fts, words.query) desc, c.id
    limit %s
"""
MODES = ("hybrid", "semantic", "fulltext")


def _key(source: str) -> str:
    """A document's identity independent of the directory the ingest ran from."""
    path = Path(source)
    path = (path if path.is_absolute() else ROOT / path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def document_rank(sources: list[str], expected: str) -> int | None:
    """1-based rank of ``expected`` among the distinct documents of ``sources`` (None: absent)."""
    seen: list[str] = []
    for source in map(_key, sources):
        if source not in seen:
            seen.append(source)
    return seen.index(expected) + 1 if expected in seen else None


def load_questions(path: Path) -> list[dict[str, str]]:
    questions = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            item = json.loads(line)
            if not {"question", "document", "tier"} <= item.keys():
                raise SystemExit(f"{path}:{number}: needs question, document and tier")
            questions.append(item)
    return questions


def summarise(per_question: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(per_question)
    out: dict[str, Any] = {}
    for mode in MODES:
        ranks = [q["ranks"][mode] for q in per_question]
        out[mode] = {
            "recall_at_1": round(sum(r == 1 for r in ranks) / n, 4),
            "recall_at_5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
            "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
            "no_result": sum(q["counts"][mode] == 0 for q in per_question),
        }
    out["agent_at_limit"] = round(sum(q["agent_hit"] for q in per_question) / n, 4)
    return out


async def evaluate(url: str, kb_dir: Path, questions: list[dict[str, str]]) -> dict[str, Any]:
    from db import kb
    from db.pool import open_pool
    from knowledge.embeddings import build_embedder
    from knowledge.ingest import ChunkingOptions, ingest_paths
    from knowledge.settings import KnowledgeSettings

    settings = KnowledgeSettings(embedding_provider="local")
    embedder = build_embedder(settings)
    pool = await open_pool(url, max_size=2)
    try:
        started = time.perf_counter()
        report = await ingest_paths(
            pool,
            embedder,
            [kb_dir],
            chunking=ChunkingOptions(settings.kb_chunk_max_chars, settings.kb_chunk_overlap_chars),
            batch_size=settings.embedding_batch_size,
        )
        ingest_seconds = time.perf_counter() - started
        if report.failed:
            raise SystemExit(f"ingest failed: {[(f.source, f.error) for f in report.failed]}")
        tiers = {_key(d.source): d.tiers for d in await kb.list_documents(pool)}
        missing = sorted({q["document"] for q in questions} - tiers.keys())
        if missing:
            raise SystemExit(f"questions name documents that were not ingested: {missing}")

        per_question: list[dict[str, Any]] = []
        embed_ms: list[float] = []
        search_ms: list[float] = []
        leaks: list[str] = []
        for q in questions:
            t0 = time.perf_counter()
            [vector] = await embedder.embed([q["question"]])
            embed_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            agent = await kb.search(
                pool,
                query_embedding=vector,
                query_text=q["question"],
                caller_tier=q["tier"],
                limit=settings.kb_search_limit,
                embedding_model=embedder.model,
            )
            search_ms.append((time.perf_counter() - t0) * 1000)
            deep = await kb.search(
                pool, query_embedding=vector, query_text=q["question"], caller_tier=q["tier"], limit=DEPTH
            )
            async with pool.connection() as conn:
                query = np.asarray(vector, dtype=np.float32)
                cur = await conn.execute(SEMANTIC_SQL, (q["tier"], query, CANDIDATES))
                semantic = [(r["id"], r["source"]) for r in await cur.fetchall()]
                cur = await conn.execute(FULLTEXT_SQL, (q["question"], q["tier"], CANDIDATES))
                fulltext = [(r["id"], r["source"]) for r in await cur.fetchall()]
            results = {
                "hybrid": [p.source for p in deep],
                "semantic": [src for _, src in semantic],
                "fulltext": [src for _, src in fulltext],
            }
            for source in {s for found in results.values() for s in found} | {p.source for p in agent}:
                allowed = tiers[_key(source)]
                if allowed and q["tier"] not in allowed:
                    leaks.append(f"{q['tier']} caller got {source} ({q['question']})")
            top = [_key(p.source) for p in deep[:3]]
            per_question.append(
                {
                    "question": q["question"],
                    "document": q["document"],
                    "tier": q["tier"],
                    "ranks": {mode: document_rank(found, q["document"]) for mode, found in results.items()},
                    "counts": {mode: len(found) for mode, found in results.items()},
                    "agent_hit": q["document"] in {_key(p.source) for p in agent},
                    "hybrid_top": list(dict.fromkeys(top)),
                    "top_similarity": round(max((p.similarity for p in agent), default=0.0), 4),
                }
            )
        chunks = await kb.count_chunks(pool)
    finally:
        await pool.close()
    return {
        "settings": {k: v for k, v in settings.describe().items() if k != "base_url"}
        | {
            "kb_chunk_max_chars": settings.kb_chunk_max_chars,
            "kb_chunk_overlap_chars": settings.kb_chunk_overlap_chars,
            "kb_search_limit": settings.kb_search_limit,
            "ranking_depth_chunks": DEPTH,
        },
        "corpus": {
            "directory": _key(str(kb_dir)),
            "documents": len(tiers),
            "chunks": chunks,
            "ingest_seconds": round(ingest_seconds, 2),
        },
        "questions": len(questions),
        "latency_ms": {"embed_query": percentiles(embed_ms), "kb_search": percentiles(search_ms)},
        "tier_leaks": leaks,
        "summary": summarise(per_question),
        "per_question": per_question,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=Path, default=ROOT / "kb" / "questions.jsonl")
    parser.add_argument("--kb", type=Path, default=ROOT / "kb" / "demo")
    args = parser.parse_args()
    questions = load_questions(args.questions)

    with bench_server(), scratch_database() as url:
        server = server_info(url)
        result = asyncio.run(evaluate(url, args.kb, questions))
    payload = {**environment(), "benchmark": "kb_eval", "server": server, **result}
    path = write_result("kb_eval", payload)

    s = result["summary"]
    print(
        table(
            ["search", "recall@1", "recall@5", "MRR", "no result"],
            [[m, s[m]["recall_at_1"], s[m]["recall_at_5"], s[m]["mrr"], s[m]["no_result"]] for m in MODES],
        )
    )
    corpus = result["corpus"]
    print(
        f"\n{result['questions']} questions, {corpus['documents']} documents, {corpus['chunks']} chunks "
        f"(ingest {corpus['ingest_seconds']} s). Agent's {result['settings']['kb_search_limit']} passages "
        f"contain the answering document: {s['agent_at_limit']:.1%}. "
        f"Query embedding p50 {result['latency_ms']['embed_query']['p50']} ms, "
        f"kb.search p50 {result['latency_ms']['kb_search']['p50']} ms."
    )
    misses = [q for q in result["per_question"] if q["ranks"]["hybrid"] != 1]
    if misses:
        print(f"\nhybrid misses at rank 1 ({len(misses)}):")
        for q in misses:
            got = q["hybrid_top"][0] if q["hybrid_top"] else None
            print(f"  rank {q['ranks']['hybrid']}: {q['question']!r} -> want {q['document']}, got {got}")
    print(f"\nwrote {path}")
    if result["tier_leaks"]:
        raise SystemExit(f"tier leaks: {result['tier_leaks']}")


if __name__ == "__main__":
    main()
