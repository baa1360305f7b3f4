"""The OpenAI Realtime model, with a session that can be let go of while it is failing.

When the model fails, agent/modes.py hands the call to a pipeline agent, and LiveKit closes the
realtime agent's session. The plugin's `aclose()` waits for the session's whole reconnect loop
and then re-raises its failure, which aborts the hand-over; this session stops the loop at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from livekit.plugins.openai import realtime


class RealtimeSession(realtime.RealtimeSession):
    async def aclose(self) -> None:
        self._main_atask.cancel()  # a reconnect loop serves nobody once the agent is replaced
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await super().aclose()


class RealtimeModel(realtime.RealtimeModel):
    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeSession:
        sess = RealtimeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        return sess
