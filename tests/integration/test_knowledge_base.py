"""The knowledge base end to end on a real Postgres + pgvector with real (emulated-OpenAI) embeddings.

Ingestion (idempotent, replacing, failing per file), tier scoping, the SQL function as Supabase
RPC would call it (RLS included), the dimension guard, and the `voicedesk kb` CLI as a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from db import kb
from db.pool import open_pool
from knowledge.embeddings import Embedder, OpenAIEmbedder
from knowledge.ingest import ChunkingOptions, IngestReport, ingest_paths
from knowledge.search import search_knowledge
from tests.support.postgres import drop_database, fresh_database
from tests.support.provider_emulators import ProviderEmulators

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "kb"


@pytest.fixture(scope="module")
def kb_url(database_url: str) -> Iterator[str]:
    """A database of this module's own (the tests retype the vector column).

    Depends on ``database_url`` only so that the session's teardown stops the test server.
    """
    url = fresh_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
async def pool(kb_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(kb_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(autouse=True)
async def empty_kb(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("delete from kb_documents")
        await conn.execute("delete from kb_embedding_config")


def embedder_for(emulators: ProviderEmulators, dimensions: int = 1536) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        api_key="emulator", base_url=emulators.base_urls["openai"], dimensions=dimensions, max_retries=0
    )


async def ingest(
    pool: AsyncConnectionPool, embedder: Embedder, *paths: Path, **kwargs: object
) -> IngestReport:
    return await ingest_paths(
        pool, embedder, list(paths), chunking=ChunkingOptions(400, 80), batch_size=8, **kwargs
    )  # type: ignore[arg-type]


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "billing.md").write_text(
        "---\ntitle: Billing\n---\n# Billing\n\nInvoices are emailed monthly.\n\n"
        "## Refunds\n\nRefunds reach the original card within fourteen days.\n"
    )
    (docs / "hours.txt").write_text("Opening hours\n\nThe phone line is open Monday to Friday.\n")
    (docs / "guides" / "security.html").write_text(
        "<html><head><title>Security</title></head><body><h1>Security</h1>"
        "<p>Customer data is encrypted at rest.</p></body></html>"
    )
    (docs / "guides" / "warranty.pdf").write_bytes((FIXTURES / "warranty.pdf").read_bytes())
    (docs / "guides" / "notes.docx").write_bytes(b"ignored: not a supported type")
    (docs / ".hidden.md").write_text("# Hidden\n\nNot ingested.\n")
    return docs


async def test_ingestion_is_idempotent(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path)
    embedder = embedder_for(provider_emulators)
    first = await ingest(pool, embedder, docs)
    assert sorted(f.source for f in first.added) == sorted(
        str(docs / p) for p in ("billing.md", "hours.txt", "guides/security.html", "guides/warranty.pdf")
    )
    assert not first.failed and first.chunks_written == await kb.count_chunks(pool) > 0
    before = {d.source: d.updated_at for d in await kb.list_documents(pool)}
    requests_before = len(provider_emulators.log("embeddings"))

    second = await ingest(pool, embedder, docs)
    assert len(second.unchanged) == 4 and not (second.added or second.updated or second.failed)
    assert second.chunks_written == 0
    assert len(provider_emulators.log("embeddings")) == requests_before  # nothing embedded
    assert {d.source: d.updated_at for d in await kb.list_documents(pool)} == before  # nothing written
    [pdf] = [d for d in await kb.list_documents(pool) if d.source.endswith(".pdf")]
    assert pdf.title == "Warranty handbook" and pdf.metadata["format"] == "pdf"


async def test_a_changed_document_replaces_its_chunks(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    embedder = embedder_for(provider_emulators)
    doc = tmp_path / "plans.md"
    doc.write_text(
        "# Plans\n\n" + "\n\n".join(f"The zanzibar plan clause {i} is long enough." for i in range(30))
    )
    await ingest(pool, embedder, doc)
    old_count = await kb.count_chunks(pool)
    assert old_count > 2
    hits = await search_knowledge(pool, embedder, "zanzibar plan", caller_tier=None)
    assert hits and "zanzibar" in hits[0].content

    doc.write_text("# Plans\n\nThe quokka plan replaced every earlier plan.\n")
    report = await ingest(pool, embedder, doc)
    assert [f.status for f in report.files] == ["updated"]
    assert await kb.count_chunks(pool) == 1 == report.chunks_written
    hits = await search_knowledge(pool, embedder, "zanzibar plan clause", caller_tier=None)
    assert all("zanzibar" not in h.content for h in hits)
    assert "quokka" in hits[0].content


async def test_remove_and_list(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path)
    await ingest(pool, embedder_for(provider_emulators), docs)
    billing = str(docs / "billing.md")
    assert await kb.remove_documents(pool, [billing, "no/such.md"]) == [billing]
    sources = [d.source for d in await kb.list_documents(pool)]
    assert billing not in sources and len(sources) == 3
    hits = await search_knowledge(pool, embedder_for(provider_emulators), "refunds card", caller_tier=None)
    assert all(h.source != billing for h in hits)
    assert await kb.remove_all(pool) == 3 and await kb.count_chunks(pool) == 0


async def test_an_unreadable_file_is_named_and_the_rest_still_ingest(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    (docs / "latin1.txt").write_bytes("Caf\xe9 menu".encode("latin-1"))
    report = await ingest(pool, embedder_for(provider_emulators), docs, tmp_path / "missing.md")
    failed = {Path(f.source).name: f.error for f in report.failed}
    assert set(failed) == {"broken.pdf", "latin1.txt", "missing.md"}
    assert "PDF" in (failed["broken.pdf"] or "") and "UTF-8" in (failed["latin1.txt"] or "")
    assert len(report.added) == 4


async def test_a_provider_failure_fails_those_files_only(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path)
    provider_emulators.fault("embeddings", "http_500", count=1)
    try:
        report = await ingest(pool, embedder_for(provider_emulators), docs)
    finally:
        provider_emulators.clear_fault("embeddings")
    assert report.failed and all("embedding failed" in (f.error or "") for f in report.failed)
    again = await ingest(pool, embedder_for(provider_emulators), docs)  # a rerun completes the job
    assert {f.status for f in again.files} <= {"added", "unchanged"} and not again.failed


def write_tiered_docs(root: Path) -> Path:
    root.mkdir()
    (root / "public.md").write_text("# Support\n\nSupport answers the phone every weekday.\n")
    (root / "enterprise.md").write_text(
        "---\ntiers: [enterprise]\n---\n# Dedicated manager\n\n"
        "Enterprise accounts get a dedicated account manager named Olga.\n"
    )
    (root / "pro.md").write_text(
        "---\ntiers: [pro, enterprise]\n---\n# Priority queue\n\nPro accounts skip the account queue.\n"
    )
    return root


async def _tiered_kb(pool: AsyncConnectionPool, embedder: Embedder, root: Path) -> None:
    report = await ingest(pool, embedder, write_tiered_docs(root))
    assert len(report.added) == 3


async def test_search_is_scoped_to_the_callers_tier(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    embedder = embedder_for(provider_emulators)
    await _tiered_kb(pool, embedder, tmp_path / "kb")
    query = "dedicated account manager Olga"

    async def sources(tier: str | None) -> set[str]:
        hits = await search_knowledge(pool, embedder, query, caller_tier=tier, limit=10)
        return {Path(h.source).name for h in hits}

    assert await sources("basic") == {"public.md"}
    assert await sources(None) == {"public.md"}
    assert await sources("pro") == {"public.md", "pro.md"}
    assert await sources("enterprise") == {"public.md", "pro.md", "enterprise.md"}
    [best, *_] = await search_knowledge(pool, embedder, query, caller_tier="enterprise")
    assert "Olga" in best.content and best.heading == "Dedicated manager"
    assert best.text_rank > 0 and best.similarity > 0.3 and best.score > 0


async def test_the_sql_function_is_callable_like_a_supabase_rpc(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path, kb_url: str
) -> None:
    embedder = embedder_for(provider_emulators)
    await _tiered_kb(pool, embedder, tmp_path / "kb")
    [vector] = await embedder.embed(["dedicated account manager"])
    literal = "[" + ",".join(f"{x:.7f}" for x in vector) + "]"  # PostgREST passes JSON arrays as text
    sql = "select * from public.match_kb_chunks(%s::text::extensions.vector, %s, %s, 3)"
    with psycopg.connect(kb_url) as conn:
        rows = conn.execute(sql, (literal, "dedicated account manager", "enterprise")).fetchall()
        assert rows[0][3].endswith("enterprise.md") and len(rows[0]) == 9
        assert (
            conn.execute(sql, (literal, "dedicated account manager", None))
            .fetchall()[0][3]
            .endswith("public.md")
        )
        # As a signed-in basic user (Supabase RLS): claiming a higher tier reveals nothing more.
        conn.execute("insert into profiles (firebase_uid, subscription_tier) values ('kb-basic', 'basic')")
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', '{\"sub\": \"kb-basic\"}', true)")
        rows = conn.execute(sql.replace("3)", "10)"), (literal, "manager", "enterprise")).fetchall()
        assert {Path(r[3]).name for r in rows} == {"public.md"}
        conn.rollback()


async def test_the_vector_dimension_follows_the_configuration(
    pool: AsyncConnectionPool, provider_emulators: ProviderEmulators, tmp_path: Path
) -> None:
    docs = write_docs(tmp_path)
    big, small = embedder_for(provider_emulators, 1536), embedder_for(provider_emulators, 384)
    await ingest(pool, big, docs)

    with pytest.raises(kb.EmbeddingMismatchError) as ingest_error:
        await ingest(pool, small, docs)
    message = str(ingest_error.value)
    assert "text-embedding-3-small with 1536 dimensions" in message
    assert "EMBEDDING_DIMENSIONS=384" in message and "--reembed" in message
    with pytest.raises(kb.EmbeddingMismatchError, match="EMBEDDING_DIMENSIONS=384"):
        await search_knowledge(pool, small, "refunds", caller_tier=None)
    assert await kb.get_embedding_config(pool) == kb.EmbeddingConfig("text-embedding-3-small", 1536)

    # --reembed: wipe, retype the column, ingest again with the new setting; searches work.
    report = await ingest(pool, small, docs, reembed=True)
    assert len(report.added) == 4
    assert await kb.get_embedding_config(pool) == kb.EmbeddingConfig("text-embedding-3-small", 384)
    assert await search_knowledge(pool, small, "refunds card", caller_tier=None)

    # An empty knowledge base simply follows the configuration.
    await kb.remove_all(pool)
    await ingest(pool, big, docs)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select format_type(atttypid, atttypmod) as t from pg_attribute"
            " where attrelid = 'kb_chunks'::regclass and attname = 'embedding'"
        )
        assert (await cur.fetchone())["t"] == "vector(1536)"  # type: ignore[index]
        cur = await conn.execute(
            "select indexdef from pg_indexes where indexname = 'kb_chunks_embedding_idx'"
        )
        assert "hnsw" in (await cur.fetchone())["indexdef"]  # type: ignore[index]
    assert (await search_knowledge(pool, big, "refunds card", caller_tier=None))[0].source.endswith(
        "billing.md"
    )


def test_the_cli(provider_emulators: ProviderEmulators, tmp_path: Path, kb_url: str) -> None:
    docs = write_docs(tmp_path)
    (docs / "broken.pdf").write_bytes(b"not a pdf at all")
    env = {**os.environ, **provider_emulators.env(), "DATABASE_URL": kb_url, "EMBEDDING_DIMENSIONS": "1536"}

    def voicedesk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from voicedesk.cli import main; main()", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = voicedesk("kb", "ingest", "docs")
    assert first.returncode == 1, first.stderr  # one file failed ...
    assert "could not ingest docs/broken.pdf" in first.stdout
    assert "4 added, 0 updated, 0 unchanged, 1 failed" in first.stdout  # ... the rest went in
    assert "files" in first.stderr and "chunks" in first.stderr  # the progress bars
    again = voicedesk("kb", "ingest", "docs/billing.md")
    assert again.returncode == 0 and "0 added, 0 updated, 1 unchanged" in again.stdout

    listed = voicedesk("kb", "list")
    assert listed.returncode == 0 and "docs/guides/security.html" in listed.stdout
    found = voicedesk("kb", "search", "refunds original card", "--tier", "basic")
    assert found.returncode == 0 and "Billing > Refunds" in found.stdout

    removed = voicedesk("kb", "remove", "docs/billing.md", "docs/nothing.md")
    assert removed.returncode == 1 and "removed docs/billing.md" in removed.stdout
    assert "not found docs/nothing.md" in removed.stderr
    assert voicedesk("kb", "remove", "--all").stdout.strip() == "removed 3 document(s)"

    env["EMBEDDING_DIMENSIONS"] = "256"
    voicedesk("kb", "ingest", "docs/hours.txt")  # empty KB: adopts 256
    env["EMBEDDING_DIMENSIONS"] = "1536"
    mismatch = voicedesk("kb", "search", "opening hours")
    assert mismatch.returncode == 1 and "EMBEDDING_DIMENSIONS=1536" in mismatch.stderr
    assert "Traceback" not in mismatch.stderr
