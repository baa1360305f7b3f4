"""The worker's journal replayer: stores call records that calls left in the on-disk journal.

Runs in the worker's main process on a timer, so journals are replayed after the database comes
back even when no call is running, and after a crash or restart of the worker.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from livekit import api
from psycopg_pool import AsyncConnectionPool

from agent import metrics
from agent.janitor import close_orphaned_calls
from agent.journal import backlog, journals, locked_if_idle, read_ops
from agent.record_ops import apply
from db.pool import open_pool

logger = logging.getLogger("voicedesk.agent.journal")


async def replay_journals(pool: AsyncConnectionPool, directory: Path) -> int:
    """Replay every journal no running call holds; return how many were fully stored."""
    stored = 0
    for path in journals(directory):
        with locked_if_idle(path) as handle:
            if handle is None:
                continue  # a live call is writing it and replays it itself
            ops = read_ops(path)
            try:
                for op in ops:
                    await asyncio.wait_for(apply(pool, op), 5.0)
            except Exception as exc:  # noqa: BLE001 - the database is still away: try next round
                logger.info("journal %s not replayed yet: %s", path.name, exc)
                return stored
            path.unlink()
            stored += 1
            logger.info("replayed journal %s (%d writes)", path.name, len(ops))
    return stored


async def run_replayer(
    database_url: str, directory: Path, livekit: api.LiveKitAPI, interval_s: float = 5.0
) -> None:
    """Replay journals, then close calls whose agent died with them (see agent/janitor.py)."""
    pool = await open_pool(database_url, min_size=0, max_size=2, wait=False)
    gone_since: dict[str, float] = {}  # calls whose room the janitor found missing, since when
    try:
        while True:
            try:
                if journals(directory):
                    await replay_journals(pool, directory)
                metrics.set_journal_backlog(backlog(directory))
                await close_orphaned_calls(
                    pool, livekit, pending={p.stem for p in journals(directory)}, gone_since=gone_since
                )
            except Exception as exc:  # noqa: BLE001 - database or LiveKit away: next round
                logger.info("journal replayer round skipped: %s", exc)
            await asyncio.sleep(interval_s)
    finally:
        await pool.close()
        await livekit.aclose()
