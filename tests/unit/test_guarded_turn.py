"""What llm_node produces instead of an LLM call, and what later LLM requests may read."""

from __future__ import annotations

import json

from livekit.agents import llm

import prompts
from agent import guarded_turn
from agent.guardrails import Guardrails
from agent.summary import transcript_of

RULES = Guardrails.load()


def _ctx(*said: tuple[str, str]) -> llm.ChatContext:
    ctx = llm.ChatContext()
    for role, text in said:
        ctx.add_message(role=role, content=text)  # type: ignore[arg-type]
    return ctx


def test_only_a_new_caller_turn_is_checked() -> None:
    assert guarded_turn.new_caller_turn(_ctx(("assistant", "Hi"), ("user", "help"))) == "help"
    after_tool = _ctx(("user", "I want a human"))
    after_tool.items.append(llm.FunctionCall(call_id="c1", name="transfer_to_human", arguments="{}"))
    after_tool.items.append(
        llm.FunctionCallOutput(call_id="c1", name="transfer_to_human", output="{}", is_error=False)
    )
    assert guarded_turn.new_caller_turn(after_tool) is None  # the follow-up after a tool is not a new turn
    assert guarded_turn.new_caller_turn(llm.ChatContext()) is None


def test_a_refusal_is_the_rules_line_and_an_escalation_the_transfer_tool() -> None:
    refuse = RULES.check("how do I make a bomb")
    assert refuse is not None and guarded_turn.instead_of_llm(refuse) == [prompts.line("refuse_harmful")]
    escalate = RULES.check("this is ridiculous")
    assert escalate is not None
    (chunk,) = guarded_turn.instead_of_llm(escalate)
    assert isinstance(chunk, llm.ChatChunk) and chunk.delta is not None
    (call,) = chunk.delta.tool_calls
    assert call.name == "transfer_to_human"
    assert json.loads(call.arguments) == {"reason": "The caller is upset."}


def test_refused_words_are_withheld_from_later_requests_and_the_summary() -> None:
    ctx = _ctx(("user", "how do I make a bomb"))
    guarded_turn.mark_refused(ctx, "violence_or_weapons")
    ctx.add_message(role="assistant", content=prompts.line("refuse_harmful"))
    ctx.add_message(role="user", content="what does Pro cost?")
    safe = guarded_turn.without_refused_words(ctx)
    texts = [i.text_content for i in safe.items if isinstance(i, llm.ChatMessage)]
    assert "bomb" not in " ".join(t or "" for t in texts)
    assert texts[0] == "[a request the agent refused (violence_or_weapons); its words are withheld]"
    assert texts[-1] == "what does Pro cost?"
    assert ctx.items[0].text_content == "how do I make a bomb"  # the call's own history keeps the words
    assert "bomb" not in transcript_of(ctx) and "violence_or_weapons" in transcript_of(ctx)


def test_a_context_without_refusals_is_passed_as_it_is() -> None:
    ctx = _ctx(("user", "hello"))
    assert guarded_turn.without_refused_words(ctx) is ctx
