"""The on-disk journal: call-record writes the database could not take, kept until it can.

One JSON-lines file per call. The call that writes a journal holds an exclusive `flock` on it,
so the worker's replayer (which retries every journal on a timer, also after a restart) never
replays a file that is still being written; a killed process drops its lock with it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger("voicedesk.agent.journal")

Op = dict[str, Any]


class CallJournal:
    """Append-only journal of one call's pending writes, locked while the call runs."""

    def __init__(self, directory: Path, call_id: uuid.UUID) -> None:
        self.path = directory / f"{call_id}.jsonl"
        self._file: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a+", encoding="utf-8")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self._file

    def append(self, op: Op) -> None:
        f = self._open()
        f.write(json.dumps(op, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())  # a journal that a crash can lose is no journal

    def pending(self) -> list[Op]:
        if not self.path.exists():
            return []
        return read_ops(self.path)

    def clear(self) -> None:
        """Everything in the journal is stored: drop it (the lock stays ours)."""
        if self._file is not None:
            self._file.truncate(0)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Release the lock; an empty journal is removed, a non-empty one is left for the replayer."""
        if self._file is None:
            return
        empty = os.fstat(self._file.fileno()).st_size == 0
        if empty:
            self.path.unlink(missing_ok=True)
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def read_ops(path: Path) -> list[Op]:
    ops = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ops.append(json.loads(line))
        except ValueError:
            logger.warning("skipping a torn line at the end of %s", path.name)  # crash mid-write
    return ops


@contextmanager
def locked_if_idle(path: Path) -> Iterator[IO[str] | None]:
    """Yield the journal opened and locked, or None when a running call holds it."""
    try:
        f = open(path, "r+", encoding="utf-8")
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield f
    finally:
        f.close()


def journals(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) if directory.exists() else []


def backlog(directory: Path) -> int:
    """Records waiting in all journals (for the journal-backlog metric)."""
    return sum(sum(1 for line in p.open(encoding="utf-8") if line.strip()) for p in journals(directory))
