"""`voicedesk kb ...`: ingest, list, remove and search the knowledge base from a terminal.

`voicedesk/cli.py` parses the arguments; this module does the work and talks to a person:
a progress bar (rich) for files and chunks on stderr, results on stdout, failures named.
Each command returns the process exit code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from db import kb
from db.pool import open_pool
from knowledge.embeddings import build_embedder
from knowledge.ingest import ChunkingOptions, FileResult, ingest_paths
from knowledge.readers import UnreadableFileError, parse_tiers
from knowledge.search import search_knowledge
from knowledge.settings import KnowledgeSettings
from voicedesk.config import load_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _run(database_url: str, work: Callable[[AsyncConnectionPool], Awaitable[int]]) -> int:
    """Open a small pool, run ``work``, and turn the errors a person can fix into messages."""

    # One INFO line per embeddings request (httpx) or damaged PDF (pypdf) is noise here: the
    # progress bar and the per-file report say it better.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    async def main() -> int:
        pool = await open_pool(database_url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except kb.EmbeddingMismatchError as exc:
        err.print(f"[bold red]error:[/] {exc}")
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
        err.print(f"[bold red]error:[/] the knowledge-base schema is missing ({exc.diag.message_primary}): "
                  "run `voicedesk db migrate` first")  # fmt: skip
    return 1


class _RichProgress:
    """Two bars: files processed, chunks embedded (its total grows as files are chunked)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.files = progress.add_task("files", total=None)
        self.chunks = progress.add_task("chunks", total=0)

    def files_found(self, total: int) -> None:
        self.progress.update(self.files, total=total)

    def chunks_found(self, count: int) -> None:
        task = self.progress.tasks[self.chunks]
        self.progress.update(self.chunks, total=(task.total or 0) + count)

    def chunks_embedded(self, count: int) -> None:
        self.progress.advance(self.chunks, count)

    def file_done(self, result: FileResult) -> None:
        self.progress.advance(self.files)
        if result.status == "failed":
            self.progress.console.print(f"[red]failed[/]    {result.source}: {result.error}")
        elif result.status != "unchanged":
            self.progress.console.print(f"{result.status:<11} {result.source} ({result.chunks} chunks)")


def ingest(database_url: str, paths: Sequence[str], *, reembed: bool, tiers: str) -> int:
    settings = load_settings(KnowledgeSettings)
    try:
        default_tiers = parse_tiers(tiers)
    except UnreadableFileError as exc:
        err.print(f"[bold red]error:[/] --tiers: {exc}")
        return 2
    embedder = build_embedder(settings)

    async def work(pool: AsyncConnectionPool) -> int:
        columns = (
            TextColumn("{task.description:<6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=False) as bar:
            report = await ingest_paths(
                pool,
                embedder,
                paths,
                chunking=ChunkingOptions(settings.kb_chunk_max_chars, settings.kb_chunk_overlap_chars),
                batch_size=settings.embedding_batch_size,
                default_tiers=default_tiers,
                reembed=reembed,
                progress=_RichProgress(bar),
            )
        await embedder.aclose()
        out.print(f"{report.summary()} ({embedder.model}, {embedder.dimensions} dimensions)")
        for failure in report.failed:
            out.print(f"[red]could not ingest[/] {failure.source}: {failure.error}")
        return 1 if report.failed else 0

    return _run(database_url, work)


def list_documents(database_url: str) -> int:
    async def work(pool: AsyncConnectionPool) -> int:
        documents = await kb.list_documents(pool)
        config = await kb.get_embedding_config(pool)
        table = Table("source", "title", "tiers", "chunks", "updated", box=None, pad_edge=False)
        for d in documents:
            table.add_row(
                d.source,
                d.title,
                ", ".join(d.tiers) or "public",
                str(d.chunk_count),
                f"{d.updated_at:%Y-%m-%d %H:%M}",
            )
        out.print(table)
        embeddings = f"{config.model}, {config.dimensions} dimensions" if config else "none yet"
        chunks = sum(d.chunk_count for d in documents)
        out.print(f"{len(documents)} document(s), {chunks} chunks; embeddings: {embeddings}")
        return 0

    return _run(database_url, work)


def remove(database_url: str, sources: Sequence[str], *, remove_everything: bool) -> int:
    if not sources and not remove_everything:
        err.print(
            "[bold red]error:[/] name the SOURCE(s) to remove (as `voicedesk kb list` shows them)"
            " or pass --all"
        )
        return 2

    async def work(pool: AsyncConnectionPool) -> int:
        if remove_everything:
            count = await kb.remove_all(pool)
            out.print(f"removed {count} document(s)")
            return 0
        removed = await kb.remove_documents(pool, sources)
        for source in removed:
            out.print(f"removed {source}")
        missing = sorted(set(sources) - set(removed))
        for source in missing:
            err.print(f"[red]not found[/] {source} (see `voicedesk kb list`)")
        return 1 if missing else 0

    return _run(database_url, work)


def search(database_url: str, query: str, *, tier: str | None, limit: int | None) -> int:
    settings = load_settings(KnowledgeSettings)
    embedder = build_embedder(settings)

    async def work(pool: AsyncConnectionPool) -> int:
        passages = await search_knowledge(
            pool, embedder, query, caller_tier=tier, limit=limit or settings.kb_search_limit
        )
        await embedder.aclose()
        if not passages:
            out.print("no passages found")
        for i, p in enumerate(passages, 1):
            below = (
                " [yellow](below KB_MIN_SIMILARITY)[/]" if p.similarity < settings.kb_min_similarity else ""
            )
            out.print(
                f"[bold]{i}. {p.title}[/] — {p.heading or '(top)'}  [dim]{p.source}[/]\n"
                f"   score {p.score:.4f}  similarity {p.similarity:.3f}  text rank {p.text_rank:.3f}{below}"
            )
            out.print(f"   {p.content}\n", markup=False)
        return 0

    return _run(database_url, work)
