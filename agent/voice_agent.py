"""The voicedesk agent: instructions from `prompts/`, the greeting first, and its tools."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from livekit import rtc
from livekit.agents import (
    Agent,
    ChatContext,
    ChatMessage,
    ModelSettings,
    RunContext,
    StopResponse,
    function_tool,
    llm,
)

import prompts
from agent import guarded_turn
from agent.audio_onset import without_leading_stillness
from agent.call_control import CallControl
from agent.caller import Caller
from agent.guardrails import UNTRUSTED_NOTE, Guardrails, Verdict
from agent.outbound import looks_like_voicemail
from agent.retrieval import Retrieval
from agent.speech import speak
from agent.spoken_reply import SpokenReply, spoken
from agent.verification import PinVerifier

logger = logging.getLogger("voicedesk.agent")

_CANNOT_VERIFY = (
    "The caller cannot be verified on this call (a PIN can be set in the app's settings). Do not "
    "discuss any account; help with general questions only."
)
VOICEMAIL_TURNS = 2  # the callee's turns that may still turn out to be an answering machine
NOT_FOUND = (
    "Nothing in the knowledge base answers this. Tell the caller you don't know and offer to "
    "connect them with a person. Do not guess."
)


class VoiceDeskAgent(Agent):
    def __init__(
        self,
        caller: Caller,
        retrieval: Retrieval | None,
        *,
        control: CallControl | None = None,
        verifier: PinVerifier | None = None,
        consent_message: str = "",
        greet: bool = True,
        on_voicemail: Callable[[], None] | None = None,
        greeting_audio: Callable[[str], AsyncIterable[rtc.AudioFrame] | None] | None = None,
        transcript_ready: Callable[[], Awaitable[None]] | None = None,
        reply_on_enter: bool = False,
        guardrails: Guardrails | None = None,
        on_guardrail: Callable[[Verdict], None] | None = None,
        max_reply_words: int = prompts.MAX_REPLY_WORDS,
        **options: Any,
    ) -> None:
        """``options`` go to `Agent`: a mode's models (agent/modes.py) and the history it continues."""
        super().__init__(
            instructions=prompts.instructions(caller.describe(), max_words=max_reply_words), **options
        )
        self._guardrails = guardrails
        self._on_guardrail = on_guardrail
        self._max_reply_words = max_reply_words
        self._caller = caller
        self._retrieval = retrieval
        self._control = control
        self._verifier = verifier
        self._consent_message = consent_message
        self._greet = greet
        self._reply_on_enter = reply_on_enter
        self._on_voicemail = on_voicemail  # set while an outbound call may still reach a machine
        self._turns_checked_for_voicemail = 0
        self._greeting_audio = greeting_audio  # pre-synthesised audio for the greeting, if cached
        self._transcript_ready = transcript_ready  # see speak()
        if control is not None:
            control.on_keypad_pin = self._verify_from_keypad

    @property
    def consent_message(self) -> str:
        return self._consent_message

    @property
    def caller(self) -> Caller:
        """Who is calling as far as we know now (verified once the PIN matched)."""
        return self._caller

    async def on_enter(self) -> None:
        if self._greet:
            self.open_call()
        elif self._reply_on_enter:  # taking over a conversation whose last turn is unanswered
            self.session.generate_reply()

    def open_call(self) -> None:
        """Consent notice, then the greeting; an outbound call opens when the callee answers."""
        if self._consent_message:  # heard in full before anything else
            self._say_fixed(self._consent_message, allow_interruptions=False)
        self._say_fixed(self.greeting())

    def _say_fixed(self, text: str, *, allow_interruptions: bool = True) -> None:
        """From cached audio when the text (or its start) was synthesised before the call."""
        audio = self._greeting_audio(text) if self._greeting_audio else None
        speak(
            self.session,
            text,
            allow_interruptions=allow_interruptions,
            audio=audio,
            transcript_ready=self._transcript_ready,
        )

    def greeting(self) -> str:
        """A fixed text goes straight to TTS: no LLM round trip before the caller hears us."""
        if self._caller.purpose:  # we called them
            return prompts.line("outbound_opener", purpose=self._caller.purpose)
        if self._caller.number and not self._caller.verified:  # no name before the PIN
            return prompts.line("phone_greeting")
        template = self._caller.settings.greeting if self._caller.settings else None
        return prompts.greeting(self._caller.name, template=template)

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        said = new_message.text_content or ""
        if self._on_voicemail is not None:
            self._check_voicemail(said)  # an answering machine's greeting ends here
        # Once per finished turn (llm_node may also run early, on a preliminary transcript).
        if self._guardrails is not None and self._on_guardrail is not None:
            verdict = self._guardrails.check(said)
            if verdict is not None:
                self._on_guardrail(verdict)

    def _check_voicemail(self, said: str) -> None:
        # The callee's first words tell a person from an answering machine, whose greeting
        # gets our message instead of a conversational reply. A greeting may pause after the
        # name ("Hi, you've reached Sam. ... leave a message"), so the first turns are checked.
        on_voicemail = self._on_voicemail
        assert on_voicemail is not None
        self._turns_checked_for_voicemail += 1
        if self._turns_checked_for_voicemail >= VOICEMAIL_TURNS:
            self._on_voicemail = None
        if looks_like_voicemail(said):
            self._on_voicemail = None
            on_voicemail()
            raise StopResponse()

    async def llm_node(
        self, chat_ctx: ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str]:
        """The guardrails decide before the LLM sees a caller's turn; its reply is then made speakable.

        A refused turn never reaches the LLM: the caller hears the rule's fixed line. A caller who
        asks for a person, or is upset, gets `transfer_to_human` as if the model had called it.
        """
        said = guarded_turn.new_caller_turn(chat_ctx)
        verdict = self._guardrails.check(said) if self._guardrails and said is not None else None
        if verdict is not None:
            if verdict.action == "refuse":
                guarded_turn.mark_refused(chat_ctx, verdict.rule)
            for chunk in guarded_turn.instead_of_llm(verdict):
                yield chunk
            return
        safe_ctx = guarded_turn.without_refused_words(chat_ctx)
        reply = SpokenReply(self._max_reply_words, tail=prompts.line("reply_cut"))
        upstream = Agent.default.llm_node(self, safe_ctx, tools, model_settings)
        async with contextlib.aclosing(upstream):  # an interrupted reply closes the LLM stream now
            async for chunk in spoken(upstream, reply):
                yield chunk
        if reply.cut:
            logger.info("reply cut to %d words (limit %d)", reply.words, self._max_reply_words)

    async def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        """Each reply starts at its first word: the caller hears it 30-50 ms sooner."""
        upstream = Agent.default.tts_node(self, text, model_settings)
        async with contextlib.aclosing(upstream):  # an interrupted reply closes the TTS stream now
            async for frame in without_leading_stillness(upstream):
                yield frame

    @function_tool()
    async def search_knowledge_base(self, context: RunContext, query: str) -> str:
        """Search the company's help center. Use it before answering any question about the product,
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
        passages = []
        for p in relevant:
            # Passages are reference data quoted from documents, never instructions to follow.
            text, removed = self._guardrails.neutralise(p.content) if self._guardrails else (p.content, 0)
            passages.append(
                {
                    "title": p.title,
                    "section": p.heading,
                    "text": text,
                    "instructions_removed": removed,
                    "score": round(p.score, 4),
                    "similarity": round(p.similarity, 4),
                }
            )
        payload: dict[str, object] = {
            "query": query,
            "found": bool(relevant),
            "trust": "untrusted_reference",
            "trust_note": UNTRUSTED_NOTE,
            "passages": passages,
            "retrieval": timing,
        }
        if not relevant:
            payload["note"] = NOT_FOUND
        return json.dumps(payload)

    @function_tool()
    async def get_account_overview(self, context: RunContext) -> str:
        """Look up the caller's own account: name, plan, email, phone number on file and what
        was discussed on their last call. Only works for a signed-in or verified caller."""
        profile = self._caller.profile
        if profile is None:
            return json.dumps(
                {
                    "identified": False,
                    "note": "The caller is not identified, so no account details may be shared.",
                }
            )
        if not self._caller.verified:
            return json.dumps(
                {
                    "identified": False,
                    "verified": False,
                    "note": "Ask the caller for their phone PIN and call verify_caller first. "
                    "Share nothing about the account until then.",
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

    @function_tool()
    async def verify_caller(self, context: RunContext, pin: str) -> str:
        """Check the phone PIN a phone caller gives, to unlock their account details. Call it
        as soon as the caller says their PIN; never repeat the PIN back.

        Args:
            pin: The digits the caller said, e.g. "4821".
        """
        result = await self._verify(pin)
        notes = {
            "verified": "Verified. You may now help with the caller's account.",
            "wrong": "The PIN does not match. Ask them to try again.",
            "locked": "Too many wrong PINs: do not discuss the account on this call; offer general "
            "help or a person.",
            # The same words for both: a stranger must not learn whether the number has an account.
            "no_pin": _CANNOT_VERIFY,
            "no_account": _CANNOT_VERIFY,
            "unavailable": "Verification is unavailable right now: offer general help or a person.",
        }
        if result == "verified":
            context.disallow_interruptions()
        return json.dumps({"result": result, "note": notes[result]})

    async def _verify(self, pin: str) -> str:
        if self._caller.verified:
            return "verified"
        if self._verifier is None:
            return "no_account"
        result = await self._verifier.verify(pin)
        if result == "verified":
            self._caller = self._caller.as_verified()
            if self._retrieval is not None and self._caller.profile is not None:
                self._retrieval.caller_tier = self._caller.profile.subscription_tier
            await self.update_instructions(
                prompts.instructions(self._caller.describe(), max_words=self._max_reply_words)
            )
        if self._control is not None:
            self._control.verification_event(result)
        return result

    async def _verify_from_keypad(self, pin: str) -> None:
        result = await self._verify(pin)
        line = {"verified": "pin_verified", "wrong": "pin_rejected", "locked": "pin_locked"}.get(result)
        if line:
            speak(self.session, prompts.line(line))

    @function_tool()
    async def transfer_to_human(self, context: RunContext, reason: str) -> str:
        """Hand the call to a person on the team. Use it when the caller asks for a human, is
        clearly upset, or you cannot help after trying.

        Args:
            reason: One short sentence on why, for the person taking over.
        """
        if self._control is not None:
            context.disallow_interruptions()
        return await self.hand_over(reason)

    async def hand_over(self, reason: str) -> str:
        """`transfer_to_human`'s result; also what a realtime guardrail escalation runs."""
        if self._control is None:
            return json.dumps({"transferred": False, "note": "No person is available on this call."})
        done = await self._control.transfer_to_human(reason)
        note = "The call is being transferred." if done else "A call back was offered instead; say goodbye."
        return json.dumps({"transferred": done, "note": note})

    @function_tool()
    async def end_call(self, context: RunContext) -> str:
        """Hang up politely once the caller says goodbye or has nothing more to ask."""
        if self._control is None:
            return json.dumps({"ended": False})
        context.disallow_interruptions()
        await context.wait_for_playout()  # let the current sentence finish first
        await self._control.hang_up("agent_ended", prompts.line("goodbye"))
        return json.dumps({"ended": True})
