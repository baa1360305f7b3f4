"""Files and folders → documents and embedded chunks in Postgres, idempotently.

Each file is hashed; an unchanged file (same bytes, tiers and chunking settings) costs one
lookup and no writes or API calls, a changed one has all its chunks replaced in one transaction.
Chunks of several files are embedded together in batches of ``EMBEDDING_BATCH_SIZE``. A file
that cannot be read or embedded is reported by name and the others still go in.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from psycopg_pool import AsyncConnectionPool

from db import kb
from knowledge.chunking import Chunk, chunk_text
from knowledge.embeddings import Embedder
from knowledge.readers import SourceDocument, UnreadableFileError, is_supported, read_document

Status = Literal["added", "updated", "unchanged", "failed"]


@dataclass(frozen=True)
class FileResult:
    source: str
    status: Status
    chunks: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    def _with(self, status: Status) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def added(self) -> list[FileResult]:
        return self._with("added")

    @property
    def updated(self) -> list[FileResult]:
        return self._with("updated")

    @property
    def unchanged(self) -> list[FileResult]:
        return self._with("unchanged")

    @property
    def failed(self) -> list[FileResult]:
        return self._with("failed")

    @property
    def chunks_written(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("added", "updated"))

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.failed)} failed; {self.chunks_written} chunks written"
        )


class Progress(Protocol):
    """What a progress display hears; the CLI draws it with rich, tests pass nothing."""

    def files_found(self, total: int) -> None: ...
    def chunks_found(self, count: int) -> None: ...
    def chunks_embedded(self, count: int) -> None: ...
    def file_done(self, result: FileResult) -> None: ...


class _NoProgress:
    def files_found(self, total: int) -> None: ...
    def chunks_found(self, count: int) -> None: ...
    def chunks_embedded(self, count: int) -> None: ...
    def file_done(self, result: FileResult) -> None: ...


@dataclass(frozen=True)
class ChunkingOptions:
    max_chars: int = 900
    overlap_chars: int = 150


@dataclass
class _Pending:
    source: str
    status: Status
    document: SourceDocument
    content_hash: str
    tiers: tuple[str, ...]
    metadata: dict[str, Any]
    chunks: list[Chunk]
    vectors: list[list[float]] = field(default_factory=list)


def discover(paths: Iterable[str | Path]) -> list[tuple[str, Path | None, str | None]]:
    """(source, file, error) for every file to ingest; folders are walked (hidden entries skipped).

    ``source`` is the path as given (normalised, not resolved), so the same command run from the
    same place finds the same documents again.
    """
    found: list[tuple[str, Path | None, str | None]] = []
    for given in paths:
        root = Path(os.path.normpath(given))
        if root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    file = Path(dirpath) / name
                    if not name.startswith(".") and is_supported(file):
                        found.append((str(file), file, None))
        elif root.is_file():
            error = None if is_supported(root) else f"unsupported file type {root.suffix or '(none)'}"
            found.append((str(root), root, error))
        else:
            found.append((str(root), None, "no such file or directory"))
    unique: dict[str, tuple[str, Path | None, str | None]] = {}
    for item in found:
        unique.setdefault(item[0], item)
    return list(unique.values())


def embedding_input(title: str, chunk: Chunk) -> str:
    """What gets embedded: the chunk with its title and heading path, which carry its topic."""
    heading = chunk.heading
    context = heading if heading.startswith(title) else f"{title} > {heading}" if heading else title
    return f"{context}\n\n{chunk.content}"


async def ingest_paths(
    pool: AsyncConnectionPool,
    embedder: Embedder,
    paths: Sequence[str | Path],
    *,
    chunking: ChunkingOptions | None = None,
    batch_size: int = 64,
    default_tiers: Sequence[str] = (),
    reembed: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest files and folders; see the module docstring.

    ``default_tiers`` apply to files that do not declare their own (Markdown front matter,
    HTML meta). ``reembed`` wipes the knowledge base first and adopts the configured embedding
    model; otherwise a model or dimension that differs from the stored one raises
    :class:`db.kb.EmbeddingMismatchError` before anything is written.
    """
    chunking = chunking or ChunkingOptions()
    progress = progress or _NoProgress()
    await kb.ensure_embedding_config(pool, embedder.model, embedder.dimensions, reset=reembed)

    report = IngestReport()
    files = discover(paths)
    progress.files_found(len(files))
    pending: list[_Pending] = []

    def done(result: FileResult) -> None:
        report.files.append(result)
        progress.file_done(result)

    for source, path, error in files:
        if path is None or error is not None:
            done(FileResult(source, "failed", error=error))
            continue
        try:
            item = await _prepare(pool, source, path, chunking, tuple(default_tiers), embedder)
        except UnreadableFileError as exc:
            done(FileResult(source, "failed", error=str(exc)))
            continue
        if isinstance(item, FileResult):
            done(item)
            continue
        progress.chunks_found(len(item.chunks))
        pending.append(item)
        if sum(len(p.chunks) for p in pending) >= batch_size:
            await _flush(pool, embedder, pending, batch_size, progress, done)
            pending = []
    await _flush(pool, embedder, pending, batch_size, progress, done)
    return report


def _load(path: Path) -> tuple[bytes, SourceDocument]:
    """Read and parse off the event loop (PDF text extraction is CPU work)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(exc.strerror or str(exc)) from exc
    return data, read_document(path, data)


async def _prepare(
    pool: AsyncConnectionPool,
    source: str,
    path: Path,
    chunking: ChunkingOptions,
    default_tiers: tuple[str, ...],
    embedder: Embedder,
) -> _Pending | FileResult:
    data, document = await asyncio.to_thread(_load, path)
    content_hash = hashlib.sha256(data).hexdigest()
    tiers = document.tiers if document.tiers is not None else default_tiers
    metadata = {
        **document.metadata,
        "format": document.format,
        "bytes": len(data),
        "chunking": {"max_chars": chunking.max_chars, "overlap_chars": chunking.overlap_chars},
        "embedding_model": embedder.model,
    }
    stored = await kb.get_document(pool, source)
    if (
        stored is not None
        and stored.content_hash == content_hash
        and stored.tiers == tiers
        and stored.metadata.get("chunking") == metadata["chunking"]
        and stored.chunk_count > 0
    ):
        return FileResult(source, "unchanged", chunks=stored.chunk_count)
    chunks = chunk_text(document.text, max_chars=chunking.max_chars, overlap_chars=chunking.overlap_chars)
    if not chunks:
        raise UnreadableFileError("no text found in the file")
    return _Pending(
        source=source,
        status="added" if stored is None else "updated",
        document=document,
        content_hash=content_hash,
        tiers=tiers,
        metadata=metadata,
        chunks=chunks,
    )


async def _flush(
    pool: AsyncConnectionPool,
    embedder: Embedder,
    pending: list[_Pending],
    batch_size: int,
    progress: Progress,
    done: Callable[[FileResult], None],
) -> None:
    """Embed the pending files' chunks in batches, then store each file in its own transaction."""
    inputs = [(p, embedding_input(p.document.title, c)) for p in pending for c in p.chunks]
    failed: dict[str, str] = {}
    for start in range(0, len(inputs), batch_size):
        batch = [(p, text) for p, text in inputs[start : start + batch_size] if p.source not in failed]
        if not batch:
            continue
        try:
            vectors = await embedder.embed([text for _, text in batch])
        except Exception as exc:  # noqa: BLE001 - any provider failure is reported per file
            for p, _ in batch:
                failed.setdefault(p.source, f"embedding failed: {type(exc).__name__}: {exc}")
            continue
        for (p, _), vector in zip(batch, vectors, strict=True):
            p.vectors.append(vector)
        progress.chunks_embedded(len(batch))
    for p in pending:
        if p.source in failed:
            done(FileResult(p.source, "failed", error=failed[p.source]))
            continue
        await kb.replace_document(
            pool,
            source=p.source,
            title=p.document.title,
            content_hash=p.content_hash,
            tiers=p.tiers,
            metadata=p.metadata,
            chunks=[
                kb.NewChunk(c.index, c.heading, c.content, v)
                for c, v in zip(p.chunks, p.vectors, strict=True)
            ],
        )
        done(FileResult(p.source, p.status, chunks=len(p.chunks)))
