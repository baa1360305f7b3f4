"""The hand-over summary without an LLM: the transcript's tail, what no reply was made to included,
PINs masked. It is what the person taking over reads when every LLM is down."""

from __future__ import annotations

from livekit.agents import AgentSession

from agent.call_control import CallControl
from agent.settings import AgentSettings


def _control(*said: tuple[str, str]) -> CallControl:
    # A real (unstarted) session: only its history is read. It takes the running event loop,
    # hence async tests: after other async tests the main thread has no loop to hand out.
    session = AgentSession()
    for role, text in said:
        session.history.add_message(role=role, content=text)  # type: ignore[arg-type]
    return CallControl(None, session, None, AgentSettings.model_construct())  # type: ignore[arg-type]


async def test_the_unanswered_question_ends_the_tail() -> None:
    control = _control(("assistant", "Hi, how can I help?"), ("user", "Hello."))
    assert control.transcript_tail("What are your opening hours?") == (
        "assistant: Hi, how can I help? / user: Hello. / user: What are your opening hours?"
    )
    assert control.transcript_tail() == "assistant: Hi, how can I help? / user: Hello."


async def test_the_tail_is_the_last_six_turns_with_pins_masked() -> None:
    turns = [("user" if i % 2 else "assistant", f"turn {i}") for i in range(8)]
    control = _control(*turns)
    tail = control.transcript_tail("My PIN is 4 8 2 1.")
    assert tail.split(" / ")[0] == "user: turn 3"  # turns 3 to 7, then the unanswered one
    assert tail.endswith("user: My PIN is [PIN].") and "4 8 2 1" not in tail
