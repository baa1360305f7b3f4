"""The OpenAI Realtime model as voicedesk runs it.

- The server detects the caller's turns but does not answer them by itself: agent/realtime_turns.py
  lets the guardrails see each final transcript first and then asks for the reply. LiveKit still
  treats the turns as the server's (barge-in, transcripts), so only ``create_response`` changes.
- In text mode (the pipeline's TTS speaks) the model's text is cut like the pipeline's replies
  (agent/spoken_reply.py) before TTS, transcript and history see it; the model's own voice is held
  to the word limit by its instructions and an output-token cap.
- When the model fails, agent/modes.py hands the call to a pipeline agent, and LiveKit closes the
  realtime agent's session. The plugin's `aclose()` waits for the session's whole reconnect loop
  and then re-raises its failure, which aborts the hand-over; this session stops the loop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from livekit.plugins.openai import realtime
from openai.types.realtime import ResponseTextDeltaEvent
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad

from agent.spoken_reply import SpokenReply

# The plugin's default turn detection, but the reply is ours to ask for. A caller who barges in
# is still heard: LiveKit cancels the reply on the server's speech_started.
TURN_DETECTION = SemanticVad(
    type="semantic_vad", eagerness="medium", create_response=False, interrupt_response=False
)
# Output tokens per word of reply: text (markdown included) ~2.5; spoken audio is billed as audio
# tokens too, assumed ~20 per second at ~2.5 words per second, plus its transcript.
TEXT_TOKENS_PER_WORD = 2.5
AUDIO_TOKENS_PER_WORD = 10
MAX_OUTPUT_TOKENS = 4096  # the API's ceiling for a number


def output_token_cap(max_words: int, *, audio: bool) -> int:
    """A backstop a little above ``max_words`` of reply: the model stops there whatever it says."""
    per_word = AUDIO_TOKENS_PER_WORD if audio else TEXT_TOKENS_PER_WORD
    return min(MAX_OUTPUT_TOKENS, int(max_words * per_word) + 50)


class RealtimeSession(realtime.RealtimeSession):
    def __init__(self, model: RealtimeModel, *, turn_detection_disabled: bool = False) -> None:
        super().__init__(model, turn_detection_disabled=turn_detection_disabled)
        self._max_words = model.max_reply_words
        self._tail = model.reply_tail
        self._replies: dict[str, SpokenReply] = {}  # assistant item id -> its text so far

    async def aclose(self) -> None:
        self._main_atask.cancel()  # a reconnect loop serves nobody once the agent is replaced
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await super().aclose()

    def _handle_response_done(self, event: Any) -> None:
        generation = self._current_generation
        super()._handle_response_done(event)
        details = event.response.status_details
        done = getattr(generation, "_done_fut", None)
        if (
            getattr(details, "reason", None) == "max_output_tokens"
            and done
            and done.done()
            and not done.cancelled()
        ):
            done.exception()  # the cap we set is no failure: nobody else reads it, asyncio would log it

    # text mode: what TTS speaks is the reply made speakable and cut at the word limit ----------
    def _handle_response_text_delta(self, event: Any) -> None:
        reply = self._replies.setdefault(event.item_id, SpokenReply(self._max_words, tail=self._tail))
        said = "".join(reply.push(event.delta))
        super()._handle_response_text_delta(event.model_copy(update={"delta": said}))

    def _handle_response_output_item_done(self, event: Any) -> None:
        item = event.item
        reply = self._replies.pop(item.id, None) if item is not None and item.id else None
        if reply is not None and (rest := "".join(reply.flush())):
            delta = {"type": "response.output_text.delta", "item_id": item.id, "delta": rest}
            with contextlib.suppress(AssertionError, KeyError):  # a generation already discarded
                super()._handle_response_text_delta(ResponseTextDeltaEvent.construct(**delta))
        super()._handle_response_output_item_done(event)


class RealtimeModel(realtime.RealtimeModel):
    def __init__(self, *, max_reply_words: int, reply_tail: str, **kwargs: Any) -> None:
        super().__init__(turn_detection=TURN_DETECTION, **kwargs)
        # create_response=False reads to the plugin as "the client takes turns"; the server still does.
        self._capabilities.turn_detection = True
        self.max_reply_words = max_reply_words
        self.reply_tail = reply_tail
        audio = "audio" in self._opts.modalities
        self.update_options(max_response_output_tokens=output_token_cap(max_reply_words, audio=audio))

    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeSession:
        sess = RealtimeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        return sess
