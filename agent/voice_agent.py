"""The voicedesk agent: instructions from `prompts/`, greeting first, tools added by later work."""

from __future__ import annotations

from livekit.agents import Agent

import prompts
from agent.caller import Caller


class VoiceDeskAgent(Agent):
    def __init__(self, caller: Caller) -> None:
        super().__init__(instructions=prompts.instructions(caller.describe()))
        self._caller = caller

    async def on_enter(self) -> None:
        # A fixed text goes straight to TTS: no LLM round trip before the caller hears us.
        template = self._caller.settings.greeting if self._caller.settings else None
        self.session.say(prompts.greeting(self._caller.name, template=template))
