"""How injected network faults look on the wire: a dropped connection and a stalled one."""

from __future__ import annotations

import asyncio

from aiohttp import web

STALL_LIMIT_S = 600.0


def drop(request: web.Request) -> None:
    """Cut the TCP connection without finishing the response or a close frame."""
    if request.transport is not None:
        request.transport.abort()


async def stall(request: web.Request) -> None:
    """Send nothing until the client gives up (or ``STALL_LIMIT_S`` passes).

    aiohttp does not cancel handlers when the client disconnects, so poll the transport
    instead of sleeping blindly and leaking a task per stalled request.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALL_LIMIT_S
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.25)
