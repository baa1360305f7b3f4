"""How many calls one worker takes, and the few "overflow" calls it answers only to say it is busy.

What LiveKit does with a job (livekit-server 1.13 ``agentservice.go``): it routes the request only
if some available worker reports a load below its ``target_load`` (0.7), picks one of the
available workers at random weighted by ``1 - load``, and when that worker declines it tries the
next; when none accepts, the job is dropped and the caller waits in silence.

So a worker with WORKER_MAX_CALLS calls in hand does not report itself full: it keeps
WORKER_OVERFLOW_CALLS more slots and a load under 0.7. When LiveKit offers it a call, it asks
the `agent_workers` table (every worker's calls in hand, refreshed each second) whether another
worker still has room. If one has, it declines and LiveKit offers the call to the next worker;
if none has, it accepts the call as an overflow call, which only hears the busy line
(`agent.busy_line`).

    calls in hand        reported load        LiveKit's view
    0 .. max-1           0.6 * calls / max    available
    max .. max+over-1    0.65                 available (declines while another worker has room)
    max+over             1.0                  full: no job is offered
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobRequest
from psycopg_pool import AsyncConnectionPool

from db import agent_workers
from db.pool import open_pool

logger = logging.getLogger("voicedesk.agent.capacity")

# Participant attributes of the agent (set when the job is accepted, so clients can read them).
WORKER_ATTRIBUTE = "voicedesk.worker"  # host:pid of the worker process that took the call
OVERFLOW_ATTRIBUTE = "voicedesk.overflow"  # "true": the call is answered only with the busy line

NORMAL_SPAN = 0.6  # loads of a worker with room: 0 .. 0.6
OVERFLOW_LOAD = 0.65  # still under LiveKit's default target_load (0.7), or the call is dropped
LOAD_THRESHOLD = 0.99  # LiveKit's own check: full only when the overflow slots are taken too
REPORT_INTERVAL_S = 1.0
ROOM_CHECK_TIMEOUT_S = 1.0


def worker_label() -> str:
    """Which machine and process took a call: readable in logs, events and attributes."""
    return f"{socket.gethostname()}:{os.getpid()}"


class CallCapacity:
    """Load function, job-request handler and `agent_workers` row of one worker."""

    def __init__(self, agent_name: str, max_calls: int, overflow_calls: int) -> None:
        self.agent_name = agent_name
        self.max_calls = max_calls
        self.overflow_calls = overflow_calls
        self.label = worker_label()
        self._accepting: set[str] = set()  # job ids accepted but not yet running
        self._server: AgentServer | None = None
        self._pool: AsyncConnectionPool | None = None

    @property
    def server_options(self) -> dict[str, object]:
        return {"load_fnc": self.load, "load_threshold": LOAD_THRESHOLD}

    def load_for(self, calls: int) -> float:
        if calls < self.max_calls:
            return NORMAL_SPAN * calls / self.max_calls
        if calls < self.max_calls + self.overflow_calls:
            return OVERFLOW_LOAD
        return 1.0

    def load(self, server: AgentServer) -> float:
        return self.load_for(len(server.active_jobs))

    def _calls_in_hand(self) -> int:
        assert self._server is not None
        return len({info.job.id for info in self._server.active_jobs} | self._accepting)

    async def on_request(self, request: JobRequest) -> None:
        """Accept a call; past WORKER_MAX_CALLS decline it, unless no other worker has room."""
        calls = self._calls_in_hand()
        overflow = calls >= self.max_calls
        if calls >= self.max_calls + self.overflow_calls or (overflow and await self._room_elsewhere()):
            logger.info("declining a call with %d in hand: full here, LiveKit tries the next worker", calls)
            # terminate=False: LiveKit offers the job to the next worker instead of ending it.
            await request.reject(terminate=False)
            return
        if overflow:
            logger.warning("every worker is full (%d calls here): answering with the busy line", calls)
        self._accepting.add(request.id)
        try:
            await request.accept(
                attributes={WORKER_ATTRIBUTE: self.label, OVERFLOW_ATTRIBUTE: str(overflow).lower()}
            )
        finally:
            self._accepting.discard(request.id)
        await self._report()  # at once: a full worker elsewhere may be asking right now

    async def _room_elsewhere(self) -> bool:
        if self._pool is None:
            return False
        try:
            return await asyncio.wait_for(
                agent_workers.another_has_room(self._pool, self.label, self.agent_name), ROOM_CHECK_TIMEOUT_S
            )
        except Exception as exc:  # noqa: BLE001 - no answer: a busy line beats silence
            logger.warning("could not ask the database for a worker with room: %s", exc)
            return False

    # the agent_workers row ----------------------------------------------------------------------
    async def run(self, server: AgentServer, database_url: str) -> None:
        """Keep this worker's row fresh until the worker stops; then remove it."""
        self._server = server
        self._pool = await open_pool(database_url, min_size=1, max_size=2, wait=False)
        try:
            while True:
                await self._report()
                await asyncio.sleep(REPORT_INTERVAL_S)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(agent_workers.forget(self._pool, self.label), 2.0)
            await self._pool.close()

    async def _report(self) -> None:
        if self._pool is None or self._server is None:
            return
        try:
            await asyncio.wait_for(
                agent_workers.report(
                    self._pool,
                    self.label,
                    self.agent_name,
                    calls=self._calls_in_hand(),
                    max_calls=self.max_calls,
                    draining=self._server.draining,
                ),
                ROOM_CHECK_TIMEOUT_S,
            )
        except Exception as exc:  # noqa: BLE001 - the database is away: calls go on, retry next tick
            logger.debug("could not report this worker's calls: %s", exc)

    def bind(self, server: AgentServer) -> None:
        self._server = server


def is_overflow(ctx: JobContext) -> bool:
    """True for a call accepted beyond WORKER_MAX_CALLS (read from our own participant)."""
    return ctx.room.local_participant.attributes.get(OVERFLOW_ATTRIBUTE) == "true"


def taken_by(participant: rtc.Participant) -> str | None:
    return participant.attributes.get(WORKER_ATTRIBUTE)
