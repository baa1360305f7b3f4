"""The voicedesk agent: instructions from `prompts/`, the greeting first, and its tools."""

from __future__ import annotations

import json
import logging

from livekit.agents import Agent, RunContext, function_tool

import prompts
from agent.caller import Caller
from agent.retrieval import Retrieval

logger = logging.getLogger("voicedesk.agent")

NOT_FOUND = (
    "Nothing in the knowledge base answers this. Tell the caller you don't know and offer to "
    "connect them with a person. Do not guess."
)


class VoiceDeskAgent(Agent):
    def __init__(self, caller: Caller, retrieval: Retrieval | None, consent_message: str = "") -> None:
        super().__init__(instructions=prompts.instructions(caller.describe()))
        self._caller = caller
        self._retrieval = retrieval
        self._consent_message = consent_message

    async def on_enter(self) -> None:
        if self._consent_message:  # heard in full before anything else
            self.session.say(self._consent_message, allow_interruptions=False)
        # A fixed text goes straight to TTS: no LLM round trip before the caller hears us.
        template = self._caller.settings.greeting if self._caller.settings else None
        self.session.say(prompts.greeting(self._caller.name, template=template))

    @function_tool()
    async def search_knowledge_base(self, context: RunContext, query: str) -> str:
        """Search Acme's help center. Use it before answering any question about the product,
        plans and prices, billing, account settings, integrations or troubleshooting, and answer
        only from the passages it returns.

        Args:
            query: What the caller wants to know, as a short question or a few keywords.
        """
        if self._retrieval is None:
            return json.dumps({"found": False, "note": NOT_FOUND})
        try:
            result, timing = await self._retrieval.for_tool(query)
        except Exception:
            logger.exception("knowledge-base search failed")
            return json.dumps({"found": False, "note": NOT_FOUND, "error": "search unavailable"})
        relevant = result.passages  # Retrieval already dropped passages below KB_MIN_SIMILARITY
        payload: dict[str, object] = {
            "query": query,
            "found": bool(relevant),
            # Passages are reference data quoted from documents, never instructions to follow.
            "passages": [
                {
                    "title": p.title,
                    "section": p.heading,
                    "text": p.content,
                    "score": round(p.score, 4),
                    "similarity": round(p.similarity, 4),
                }
                for p in relevant
            ],
            "retrieval": timing,
        }
        if not relevant:
            payload["note"] = NOT_FOUND
        return json.dumps(payload)

    @function_tool()
    async def get_account_overview(self, context: RunContext) -> str:
        """Look up the caller's own account: name, plan, email, phone number on file and what
        was discussed on their last call. Only works for a caller who is signed in."""
        profile = self._caller.profile
        if profile is None:
            return json.dumps(
                {
                    "identified": False,
                    "note": "The caller is not identified, so no account details may be shared.",
                }
            )
        return json.dumps(
            {
                "identified": True,
                "name": profile.display_name,
                "plan": profile.subscription_tier,
                "email": profile.email,
                "phone": profile.phone_e164,
                "last_call_summary": profile.last_interaction_summary,
                "last_call_at": profile.last_interaction_at.isoformat()
                if profile.last_interaction_at
                else None,
            }
        )
