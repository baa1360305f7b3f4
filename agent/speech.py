"""Fixed lines (greeting, goodbye, notices) in whichever voice the call has.

`AgentSession.say()` needs a TTS. A realtime agent speaking with the model's own voice has none,
so the model is asked to say the line word for word: the caller hears one voice all call.

A line that must be heard to its end (consent notice, hand-over, voicemail message, goodbye) is
said with ``allow_interruptions=False``. With the Realtime server detecting turns, LiveKit ignores
that and any sound the caller makes cuts the line, so the caller's audio is not listened to until
the line has been said.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.utils import is_given
from livekit.agents.voice import SpeechHandle

VERBATIM = 'Say exactly this to the caller, word for word and nothing else: "{text}"'


_deaf: weakref.WeakKeyDictionary[AgentSession, int] = weakref.WeakKeyDictionary()  # lines not to be cut


def _server_turns(session: AgentSession) -> bool:
    model = session.current_agent.llm
    return isinstance(model, llm.RealtimeModel) and model.capabilities.turn_detection


def _not_listening_during(session: AgentSession, handle: SpeechHandle) -> None:
    _deaf[session] = _deaf.get(session, 0) + 1
    session.input.set_audio_enabled(False)

    def done(_: SpeechHandle) -> None:
        _deaf[session] -= 1
        if not _deaf[session]:
            session.input.set_audio_enabled(True)

    handle.add_done_callback(done)


def has_tts(session: AgentSession) -> bool:
    agent_tts = session.current_agent.tts
    return (agent_tts if is_given(agent_tts) else session.tts) is not None


async def _shown_after(ready: Awaitable[None], text: str) -> AsyncIterator[str]:
    await ready
    yield text


def speak(
    session: AgentSession,
    text: str,
    *,
    allow_interruptions: bool = True,
    audio: AsyncIterable[rtc.AudioFrame] | None = None,
    transcript_ready: Callable[[], Awaitable[None]] | None = None,
) -> SpeechHandle:
    """``audio``: the line already synthesised (agent/greeting_cache.py), else TTS speaks it.

    ``transcript_ready``: the line's words reach the transcript once what it returns is done,
    while its audio plays at once. RoomIO attaches the agent's transcript to the call once
    LiveKit tells the agent about the caller, which it does when the caller publishes a track;
    a caller already subscribed to our voice hears us before that, and earlier words are lost.
    """
    if has_tts(session):
        kwargs = {"audio": audio} if audio is not None else {}
        shown = _shown_after(transcript_ready(), text) if transcript_ready is not None else text
        handle = session.say(shown, allow_interruptions=allow_interruptions, **kwargs)
    else:
        handle = session.generate_reply(
            instructions=VERBATIM.format(text=text),
            tool_choice="none",
            allow_interruptions=allow_interruptions,
        )
    if not allow_interruptions and _server_turns(session):
        _not_listening_during(session, handle)
    return handle
