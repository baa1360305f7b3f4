"""Fixed lines (greeting, goodbye, notices) in whichever voice the call has.

`AgentSession.say()` needs a TTS. A realtime agent speaking with the model's own voice has none,
so the model is asked to say the line word for word: the caller hears one voice all call.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.utils import is_given
from livekit.agents.voice import SpeechHandle

VERBATIM = 'Say exactly this to the caller, word for word and nothing else: "{text}"'


def has_tts(session: AgentSession) -> bool:
    agent_tts = session.current_agent.tts
    return (agent_tts if is_given(agent_tts) else session.tts) is not None


def speak(
    session: AgentSession,
    text: str,
    *,
    allow_interruptions: bool = True,
    audio: AsyncIterable[rtc.AudioFrame] | None = None,
) -> SpeechHandle:
    """``audio``: the line already synthesised (agent/greeting_cache.py), else TTS speaks it."""
    if has_tts(session):
        kwargs = {"audio": audio} if audio is not None else {}
        return session.say(text, allow_interruptions=allow_interruptions, **kwargs)
    return session.generate_reply(
        instructions=VERBATIM.format(text=text), tool_choice="none", allow_interruptions=allow_interruptions
    )
