"""Knowledge-base search latency and HNSW recall on a synthetic corpus of N chunks.

A real help centre has a few hundred chunks; this asks how the same schema behaves at 10k and
100k, so a customer with a big knowledge base knows what a lookup costs the caller. The corpus
is random unit vectors around cluster centres (embeddings of a real corpus are clustered by
topic, uniform random ones would make HNSW look worse than it is) with random-word text whose
vocabulary also follows the clusters, so the full-text half of the hybrid search finds matches.

Measured, for each size: load time (binary COPY), GIN and HNSW build times, then per
``hnsw.ef_search`` value the latency of the pure HNSW query, of the tier-filtered HNSW query
that ``match_kb_chunks`` runs first, and of ``match_kb_chunks`` itself (hybrid), with the
recall@10 the HNSW queries reach against exact search (numpy brute force over the same vectors).
Exact search latency (sequential scan) is measured too, for reference.

    python -m bench.kb_search [--sizes 10000 100000] [--queries 200] [--dimensions 384]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector

from bench.common import (
    bench_server,
    environment,
    percentiles,
    scratch_database,
    server_info,
    table,
    write_result,
)

Vectors = npt.NDArray[np.float32]

K = 10  # recall@K and the LIMIT of the pure HNSW queries
MATCH_COUNT = 5  # what the agent asks match_kb_chunks for (KB_SEARCH_LIMIT default)
CALLER_TIER = "pro"  # sees public and pro documents: the filter match_kb_chunks applies
CHUNKS_PER_DOCUMENT = 10
WORDS_PER_CHUNK = 90
TOPIC_WORDS = 40  # words typical of one cluster
VOCABULARY = 6000
WARMUP = 20

HNSW_SQL = "select id from kb_chunks order by embedding <=> %s limit %s"
FILTERED_SQL = """
    select c.id from kb_chunks c join kb_documents d on d.id = c.document_id
    where cardinality(d.tiers) = 0 or %s = any (d.tiers)
    order by c.embedding <=> %s limit %s
"""
HYBRID_SQL = "select * from match_kb_chunks(%s, %s, %s, %s)"


# --- synthetic corpus -------------------------------------------------------------------------


def _unit(x: Vectors) -> Vectors:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _words(rng: np.random.Generator) -> list[str]:
    """Pronounceable pseudo-words, distinct, so to_tsvector keeps them as lexemes."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(syllables, size=int(rng.integers(2, 4)))))
    return sorted(words)


class Corpus:
    """N clustered unit vectors with their text, document and tier assignment, and queries."""

    def __init__(self, n: int, dimensions: int, clusters: int, spread: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.dimensions = dimensions
        self.centres = _unit(rng.standard_normal((clusters, dimensions), dtype=np.float32))
        self.spread = spread
        self.cluster = rng.integers(0, clusters, size=n)
        self.vectors = self._around(self.cluster)
        self.words = np.array(_words(rng))
        # Zipf-like background frequencies, and each cluster's own topic words.
        weights = 1.0 / np.arange(1, VOCABULARY + 1)
        self.background = weights / weights.sum()
        self.topics = rng.integers(0, VOCABULARY, size=(clusters, TOPIC_WORDS))
        self.n_documents = -(-n // CHUNKS_PER_DOCUMENT)
        draw = rng.random(self.n_documents)
        self.document_tiers: list[list[str]] = [
            [] if r < 0.7 else ["pro", "enterprise"] if r < 0.85 else ["enterprise"] for r in draw
        ]
        self.document_ids = [
            uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i) for i in range(self.n_documents)
        ]

    def _around(self, cluster: npt.NDArray[np.int64]) -> Vectors:
        noise = self.rng.standard_normal((len(cluster), self.dimensions), dtype=np.float32)
        return _unit(self.centres[cluster] + noise * np.float32(self.spread / np.sqrt(self.dimensions)))

    def text(self, i: int) -> str:
        topical = self.rng.random(WORDS_PER_CHUNK) < 0.3
        ids = np.where(
            topical,
            self.topics[self.cluster[i]][self.rng.integers(0, TOPIC_WORDS, size=WORDS_PER_CHUNK)],
            self.rng.choice(VOCABULARY, size=WORDS_PER_CHUNK, p=self.background),
        )
        return " ".join(self.words[ids])

    def queries(self, count: int) -> tuple[Vectors, list[str]]:
        """Query vectors drawn like the corpus (not copies of it) and 2-3 topic words each."""
        cluster = self.rng.integers(0, len(self.centres), size=count)
        texts = [
            " ".join(
                self.words[self.rng.choice(self.topics[c], size=int(self.rng.integers(2, 4)), replace=False)]
            )
            for c in cluster
        ]
        return self._around(cluster), texts

    def visible(self, tier: str) -> npt.NDArray[np.bool_]:
        """Which chunks a caller of ``tier`` may see (what the SQL filter keeps)."""
        per_document = np.array([not t or tier in t for t in self.document_tiers])
        return per_document[np.arange(len(self.vectors)) // CHUNKS_PER_DOCUMENT]


def exact_top_k(
    vectors: Vectors, queries: Vectors, k: int, mask: npt.NDArray[np.bool_] | None = None
) -> np.ndarray:
    """Row numbers of the k nearest chunks by cosine (vectors are unit length: dot product)."""
    scores = queries @ vectors.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)


# --- loading and indexing ---------------------------------------------------------------------


async def _prepare_column(url: str, dimensions: int) -> None:
    """Retype the vector column the way an ingest would (the migration creates vector(1536))."""
    from db.kb import ensure_embedding_config
    from db.pool import open_pool

    pool = await open_pool(url, max_size=1)
    try:
        await ensure_embedding_config(pool, "synthetic-bench", dimensions)
    finally:
        await pool.close()


def load(conn: psycopg.Connection[Any], corpus: Corpus) -> dict[str, Any]:
    """COPY documents and chunks in binary with the indexes dropped, then rebuild them (timed)."""
    indexdefs = dict(
        conn.execute(
            "select indexname, indexdef from pg_indexes where tablename = 'kb_chunks'"
            " and indexname in ('kb_chunks_embedding_idx', 'kb_chunks_fts_idx')"
        ).fetchall()
    )
    for name in indexdefs:
        conn.execute(f"drop index {name}")  # type: ignore[arg-type]
    conn.commit()

    started = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(
            "copy kb_documents (id, source, title, content_hash, tiers) from stdin (format binary)"
        ) as copy:
            copy.set_types(["uuid", "text", "text", "text", "text[]"])
            for d, doc_id in enumerate(corpus.document_ids):
                copy.write_row(
                    (doc_id, f"synthetic/{d:07d}.md", f"Document {d}", "-", corpus.document_tiers[d])
                )
        with cur.copy(
            "copy kb_chunks (document_id, chunk_index, heading, content, embedding)"
            " from stdin (format binary)"
        ) as copy:
            copy.set_types(["uuid", "int4", "text", "text", "vector"])
            for i, vector in enumerate(corpus.vectors):
                d, index = divmod(i, CHUNKS_PER_DOCUMENT)
                copy.write_row((corpus.document_ids[d], index, f"Section {index}", corpus.text(i), vector))
    conn.commit()
    load_seconds = time.perf_counter() - started

    conn.execute("set maintenance_work_mem = '2GB'")
    conn.execute(f"set max_parallel_maintenance_workers = {max(0, _cpus() - 1)}")  # type: ignore[arg-type]
    timings = {"load_seconds": round(load_seconds, 2)}
    for name, key in (
        ("kb_chunks_fts_idx", "gin_build_seconds"),
        ("kb_chunks_embedding_idx", "hnsw_build_seconds"),
    ):
        started = time.perf_counter()
        conn.execute(indexdefs[name])  # type: ignore[arg-type]
        conn.commit()
        timings[key] = round(time.perf_counter() - started, 2)
    conn.autocommit = True
    conn.execute("vacuum analyze kb_documents")
    conn.execute("vacuum analyze kb_chunks")
    conn.autocommit = False
    sizes = conn.execute(
        "select pg_total_relation_size('kb_chunks'), pg_relation_size('kb_chunks_embedding_idx'),"
        " pg_relation_size('kb_chunks_fts_idx')"
    ).fetchone()
    assert sizes is not None
    return {
        **timings,
        "hnsw_indexdef": indexdefs["kb_chunks_embedding_idx"],
        "table_total_mb": round(sizes[0] / 2**20, 1),
        "hnsw_index_mb": round(sizes[1] / 2**20, 1),
        "gin_index_mb": round(sizes[2] / 2**20, 1),
    }


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


# --- measuring --------------------------------------------------------------------------------


def _timed(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000, rows


def _recall(found: list[list[int]], exact: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return round(hits / sum(len(e) for e in exact), 4)


def _plan(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> str:
    """The plan's node types (and index names), e.g. ``Limit > Index Scan(kb_chunks_embedding_idx)``."""
    row = conn.execute(f"explain (format json) {sql}", params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        index = node.get("Index Name")
        nodes.append(f"{node['Node Type']}({index})" if index else node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return " > ".join(nodes)


def measure(
    conn: psycopg.Connection[Any],
    corpus: Corpus,
    ids: np.ndarray,
    queries: Vectors,
    texts: list[str],
    ef_search: int,
) -> dict[str, Any]:
    """Latency and recall@K of pure HNSW, tier-filtered HNSW and match_kb_chunks at one ef_search."""
    conn.execute(f"set hnsw.ef_search = {int(ef_search)}")  # type: ignore[arg-type]
    conn.execute("set hnsw.iterative_scan = relaxed_order")  # as match_kb_chunks sets it
    exact_all = [[int(ids[j]) for j in row] for row in exact_top_k(corpus.vectors, queries, K)]
    exact_visible = [
        [int(ids[j]) for j in row]
        for row in exact_top_k(corpus.vectors, queries, K, corpus.visible(CALLER_TIER))
    ]
    kinds = {
        "hnsw": (HNSW_SQL, lambda q, t: (q, K)),
        "hnsw_filtered": (FILTERED_SQL, lambda q, t: (CALLER_TIER, q, K)),
        "hybrid": (HYBRID_SQL, lambda q, t: (q, t, CALLER_TIER, MATCH_COUNT)),
    }
    out: dict[str, Any] = {}
    for kind, (sql, params) in kinds.items():
        for q, t in zip(queries[:WARMUP], texts[:WARMUP], strict=True):
            conn.execute(sql, params(q, t))  # type: ignore[arg-type]
        samples, found = [], []
        for q, t in zip(queries, texts, strict=True):
            ms, rows = _timed(conn, sql, params(q, t))
            samples.append(round(ms, 3))
            found.append([r[0] for r in rows])
        result: dict[str, Any] = {"latency_ms": percentiles(samples), "samples_ms": samples}
        if kind == "hnsw":
            result["recall_at_10"] = _recall(found, exact_all)
        elif kind == "hnsw_filtered":
            result["recall_at_10"] = _recall(found, exact_visible)
        else:
            result["mean_rows"] = round(sum(map(len, found)) / len(found), 2)
        result["plan"] = _plan(conn, sql, params(queries[0], texts[0]))
        out[kind] = result
    conn.rollback()
    return out


def measure_exact(conn: psycopg.Connection[Any], queries: Vectors) -> dict[str, Any]:
    """Latency of exact top-K (no index: a sequential scan), the baseline HNSW saves us from."""
    conn.execute("set enable_indexscan = off")
    samples = [round(_timed(conn, HNSW_SQL, (q, K))[0], 3) for q in queries]
    plan = _plan(conn, HNSW_SQL, (queries[0], K))
    conn.rollback()
    return {"latency_ms": percentiles(samples), "samples_ms": samples, "plan": plan}


async def measure_api(url: str, queries: Vectors, texts: list[str]) -> dict[str, Any]:
    """``db.kb.search`` through the async pool: what the agent's tool actually waits for."""
    from db.kb import search
    from db.pool import open_pool

    pool = await open_pool(url, max_size=2)
    try:
        for q, t in zip(queries[:WARMUP], texts[:WARMUP], strict=True):
            await search(pool, query_embedding=q, query_text=t, caller_tier=CALLER_TIER, limit=MATCH_COUNT)
        samples = []
        for q, t in zip(queries, texts, strict=True):
            started = time.perf_counter()
            await search(pool, query_embedding=q, query_text=t, caller_tier=CALLER_TIER, limit=MATCH_COUNT)
            samples.append(round((time.perf_counter() - started) * 1000, 3))
    finally:
        await pool.close()
    return {"latency_ms": percentiles(samples), "samples_ms": samples}


def run_size(url: str, args: argparse.Namespace, n: int) -> dict[str, Any]:
    corpus = Corpus(n, args.dimensions, args.clusters, args.spread, args.seed)
    queries, texts = corpus.queries(args.queries)
    asyncio.run(_prepare_column(url, args.dimensions))
    with psycopg.connect(url) as conn:
        conn.execute("set search_path to public, extensions")
        register_vector(conn)
        print(f"[{n}] loading {n} chunks ({corpus.n_documents} documents) ...", flush=True)
        build = load(conn, corpus)
        print(f"[{n}] {build}", flush=True)
        rows = conn.execute(
            "select c.id, c.chunk_index, d.source"
            " from kb_chunks c join kb_documents d on d.id = c.document_id"
        ).fetchall()
        conn.rollback()
        ids = np.zeros(n, dtype=np.int64)
        for chunk_id, index, source in rows:
            ids[int(source[10:17]) * CHUNKS_PER_DOCUMENT + index] = chunk_id
        conn.execute("select '[1]'::vector")  # loads pgvector, which defines hnsw.*
        default_ef = int(conn.execute("show hnsw.ef_search").fetchone()[0])  # type: ignore[index]
        conn.rollback()
        by_ef = {}
        for ef in dict.fromkeys([default_ef, *args.ef_search]):
            print(f"[{n}] measuring at hnsw.ef_search={ef} ...", flush=True)
            by_ef[str(ef)] = measure(conn, corpus, ids, queries, texts, ef)
        exact = measure_exact(conn, queries[: args.exact_queries])
    api = asyncio.run(measure_api(url, queries, texts))
    return {
        "chunks": n,
        "documents": corpus.n_documents,
        "build": build,
        "default_ef_search": default_ef,
        "by_ef_search": by_ef,
        "exact_seqscan": exact,
        "kb_search_api_default_ef": api,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000], help="corpus sizes in chunks"
    )
    parser.add_argument("--queries", type=int, default=200, help="measured queries per kind")
    parser.add_argument("--dimensions", type=int, default=384, help="vector length (384 = local model)")
    parser.add_argument("--clusters", type=int, default=200, help="topic clusters in the corpus")
    parser.add_argument("--spread", type=float, default=1.0, help="noise norm around a cluster centre")
    parser.add_argument(
        "--ef-search", type=int, nargs="*", default=[100], help="ef_search values besides the default"
    )
    parser.add_argument("--exact-queries", type=int, default=30, help="queries for the exact-scan baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    results = []
    with bench_server():
        for n in args.sizes:
            with scratch_database() as url:
                server = server_info(url)
                results.append(run_size(url, args, n))
    payload = {
        **environment(),
        "benchmark": "kb_search",
        "server": server,
        "settings": {
            "dimensions": args.dimensions,
            "clusters": args.clusters,
            "spread": args.spread,
            "queries": args.queries,
            "warmup_queries": WARMUP,
            "k": K,
            "match_count": MATCH_COUNT,
            "caller_tier": CALLER_TIER,
            "tier_mix": "70% public, 15% pro+enterprise, 15% enterprise documents",
            "words_per_chunk": WORDS_PER_CHUNK,
            "chunks_per_document": CHUNKS_PER_DOCUMENT,
            "seed": args.seed,
            "latency": "client-side wall time over loopback, one connection, sequential queries",
        },
        "sizes": results,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    path = write_result("kb_search", payload)

    print()
    print(
        table(
            ["chunks", "load s", "hnsw build s", "hnsw MB"],
            [
                [
                    r["chunks"],
                    r["build"]["load_seconds"],
                    r["build"]["hnsw_build_seconds"],
                    r["build"]["hnsw_index_mb"],
                ]
                for r in results
            ],
        )
    )
    print()
    rows = []
    for r in results:
        for ef, m in r["by_ef_search"].items():
            for kind in ("hnsw", "hnsw_filtered", "hybrid"):
                lat = m[kind]["latency_ms"]
                rows.append(
                    [
                        r["chunks"],
                        ef,
                        kind,
                        lat["p50"],
                        lat["p95"],
                        lat["p99"],
                        m[kind].get("recall_at_10", ""),
                    ]
                )
        api = r["kb_search_api_default_ef"]["latency_ms"]
        rows.append(
            [r["chunks"], r["default_ef_search"], "db.kb.search", api["p50"], api["p95"], api["p99"], ""]
        )
        ex = r["exact_seqscan"]["latency_ms"]
        rows.append([r["chunks"], "-", "exact (seq scan)", ex["p50"], ex["p95"], ex["p99"], 1.0])
    print(table(["chunks", "ef_search", "query", "p50 ms", "p95 ms", "p99 ms", "recall@10"], rows))
    print(f"\nwrote {path} in {payload['total_seconds']} s")


if __name__ == "__main__":
    main()
