"""Keeping a call in hand: silence, the length limit, the keypad, hand-over to a person, hanging up.

Everything here ends in speech the caller hears first: nobody is cut off without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from livekit import api, rtc
from livekit.agents import AgentSession, JobContext, UserStateChangedEvent

import prompts
from agent.call_record import CallRecord
from agent.settings import AgentSettings
from agent.speech import speak
from agent.summary import summarize
from voicedesk.pins import mask_pins

logger = logging.getLogger("voicedesk.agent.call_control")

PLAYOUT_LIMIT_S = 30.0  # a fixed line never takes longer; never wait forever on a broken TTS
HANDOFF_SUMMARY_LIMIT_S = 4.0
KEYPAD_HUMAN = "0"
KEYPAD_PIN_START, KEYPAD_PIN_END = "*", "#"


class CallControl:
    def __init__(
        self,
        ctx: JobContext,
        session: AgentSession,
        record: CallRecord | None,
        settings: AgentSettings,
        *,
        sip_identity: str | None = None,
        purpose: str | None = None,
    ) -> None:
        self._ctx = ctx
        self._session = session
        self._record = record
        self._settings = settings
        self.sip_identity = sip_identity
        self.purpose = purpose
        self.end_reason: str | None = None  # set when we ended the call, wins over LiveKit's reason
        self.final_status: str | None = None  # an outbound call never answered: no_answer, busy, failed
        self._reprompts = 0
        self._tasks: set[asyncio.Future[object]] = set()
        self._keypad: str | None = None  # digits typed after * (a PIN), None when not entering one
        self.on_keypad_pin: Callable[[str], Awaitable[None]] | None = None
        self.verified = False  # until then key presses are not recorded: they may be a PIN
        self._no_transfer = asyncio.Event()  # cleared while a hand-over is in progress
        self._no_transfer.set()

    @property
    def ending(self) -> bool:
        return self.end_reason is not None

    def _event(self, kind: str, **detail: object) -> None:
        if self._record is not None:
            self._record.event(kind, **detail)

    def spawn(self, coro: Awaitable[object], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def say(self, text: str) -> None:
        handle = speak(self._session, text, allow_interruptions=False)
        with contextlib.suppress(TimeoutError, RuntimeError):
            await asyncio.wait_for(handle.wait_for_playout(), PLAYOUT_LIMIT_S)

    def verification_event(self, result: str) -> None:
        self._event("verification", result=result)
        if result == "verified":
            self.verified = True
            if self._record is not None:
                self._record.mask_spoken_pins = False  # from now on digits are account talk, not a PIN

    # ending ------------------------------------------------------------------------------------
    async def hang_up(self, reason: str, line: str | None = None) -> None:
        """Say ``line``, then end the call for everyone (a phone caller hears the hang-up)."""
        await self._no_transfer.wait()  # a hand-over in progress decides first; if it fails, we go on
        if self.ending:
            return
        self.end_reason = reason
        self._event("hang_up", reason=reason)
        if line:
            await self.say(line)
        await self.delete_room()

    async def delete_room(self) -> None:
        try:
            await self._ctx.delete_room()
        except Exception:  # the room may already be gone; the job ends either way
            logger.debug("room already gone", exc_info=True)
        self._ctx.shutdown(reason=self.end_reason or "completed")

    # silence and the length limit ------------------------------------------------------------
    def watch(self) -> None:
        self._session.on("user_state_changed", self._on_user_state)
        limit = self._settings.max_call_seconds
        warning_at = limit - self._settings.call_end_warning_seconds
        self.spawn(self._length_limit(limit, warning_at), "call-length-limit")

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self._reprompts = 0
        elif ev.new_state == "away" and not self.ending:
            if self._reprompts >= self._settings.silence_max_reprompts:
                self.spawn(self.hang_up("silence", prompts.line("silence_goodbye")), "silence-hang-up")
                return
            self._reprompts += 1
            self._event("reprompt", count=self._reprompts)
            # Back to "listening", so the away timer runs again once the re-prompt has been said.
            self._session.reset_away_timer()
            speak(self._session, prompts.line("reprompt"))

    async def _length_limit(self, limit: float, warning_at: float) -> None:
        if warning_at > 0 and self._settings.call_end_warning_seconds > 0:
            await asyncio.sleep(warning_at)
            if not self.ending:
                self._event("duration_warning", seconds_left=round(limit - warning_at))
                speak(self._session, prompts.line("duration_warning"))
            await asyncio.sleep(limit - warning_at)
        else:
            await asyncio.sleep(limit)
        await self.hang_up("max_duration", prompts.line("duration_goodbye"))

    # the keypad ------------------------------------------------------------------------------
    def on_dtmf(self, ev: rtc.SipDTMF) -> None:
        """0 asks for a person; * starts a PIN, # ends it. Until the caller is verified, the
        digits they press are not recorded (they may be typing a PIN without the *)."""
        digit = ev.digit
        if self._keypad is not None:
            if digit == KEYPAD_PIN_END:
                pin, self._keypad = self._keypad, None
                self._event("dtmf", digit="PIN")
                if self.on_keypad_pin is not None:
                    self.spawn(self.on_keypad_pin(pin), "keypad-pin")
            elif digit.isdigit():
                self._keypad += digit
            return
        self._event("dtmf", digit=digit if self.verified or not digit.isdigit() else "digit")
        if digit == KEYPAD_PIN_START:
            self._keypad = ""
        elif digit == KEYPAD_HUMAN:
            self.spawn(self.transfer_to_human("caller pressed 0"), "keypad-transfer")

    # hand-over ---------------------------------------------------------------------------------
    async def transfer_to_human(
        self,
        reason: str,
        *,
        announce: bool = True,
        end_reason: str = "transferred",
        summary: str | None = None,
    ) -> bool:
        """SIP REFER to HUMAN_TRANSFER_TO, with a summary recorded for whoever picks up.

        Returns False (and records a call back) when there is nobody to transfer to: a web call,
        no transfer number configured, or the transfer was refused. ``announce``: say the
        hand-over and, on failure, the call-back offer (False: the caller already heard a line
        of its own, e.g. a recorded one while the TTS is down). ``end_reason``: the call's end
        reason once handed over. ``summary``: the hand-over summary, when the LLM is known to be
        down (else the LLM writes one).
        """
        if self.ending or not self._no_transfer.is_set():  # one at a time: keypad and LLM may race
            return False
        self._no_transfer.clear()
        try:
            return await self._transfer(reason, announce=announce, end_reason=end_reason, summary=summary)
        finally:
            self._no_transfer.set()

    async def _transfer(self, reason: str, *, announce: bool, end_reason: str, summary: str | None) -> bool:
        summary = summary or await self._handoff_summary()
        target = self._settings.transfer_uri
        if target is None or self.sip_identity is None:
            return await self._offer_callback(reason, summary, announce=announce)
        self._event("transfer", to=target, reason=reason, summary=summary)
        self.end_reason = end_reason  # nothing else may end the call while we hand it over
        if announce:
            await self.say(prompts.line("transfer"))
        try:
            response = await self._ctx.api.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=self._ctx.room.name,
                    participant_identity=self.sip_identity,
                    transfer_to=target,
                )
            )
            # Newer servers answer with a status instead of an error; older ones with nothing.
            if response is not None and response.status == api.SIPTransferStatus.STS_TRANSFER_FAILED:
                raise RuntimeError(f"transfer refused (SIP {response.sip_status.code or '?'})")
        except Exception as exc:  # noqa: BLE001 - any refusal: the caller is offered a call back
            return await self._transfer_refused(exc, reason, summary, announce=announce)
        self._event("transferred", to=target)
        await self.delete_room()
        return True

    async def _transfer_refused(self, exc: Exception, reason: str, summary: str, *, announce: bool) -> bool:
        logger.warning("transfer to a person failed: %s", exc)
        self.end_reason = None
        self._event("transfer_failed", error=str(exc)[:200])
        return await self._offer_callback(reason, summary, announce=announce)

    async def _offer_callback(self, reason: str, summary: str, *, announce: bool) -> bool:
        # The offer is a promise: it is recorded, so someone does call back.
        self._event("callback_requested", reason=reason, summary=summary)
        if announce:
            await self.say(prompts.line("transfer_unavailable"))
        return False

    async def _handoff_summary(self) -> str:
        """What the person taking over needs to know; the transcript's tail if the LLM is slow."""
        try:
            summary, _ = await asyncio.wait_for(
                summarize(self._session.llm, self._session.history),  # type: ignore[arg-type]
                HANDOFF_SUMMARY_LIMIT_S,
            )
        except Exception:  # noqa: BLE001 - a slow or failing LLM: fall back to the transcript
            summary = None
        return mask_pins(summary) if summary else self.transcript_tail()

    def transcript_tail(self, unanswered: str | None = None) -> str:
        """The call's last turns as said, PINs masked; ``unanswered``: the caller's last words
        when no reply could be made (they never reached the conversation)."""
        said = [
            f"{m.role}: {m.text_content}"
            for m in self._session.history.messages()
            if m.role in ("user", "assistant") and m.text_content
        ]
        if unanswered:
            said.append(f"user: {unanswered}")
        return mask_pins(" / ".join(said[-6:]))  # the summary reads the call as said, PIN included

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
