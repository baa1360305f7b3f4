"""The reply word limit in realtime mode, driven by the REAL LiveKit OpenAI Realtime plugin
(through agent/realtime_model.py) against the realtime emulator.

- Text mode (ElevenLabs speaks): the model's text is cut at the limit before anything downstream
  (TTS, transcript, history) sees it.
- Either mode: the session carries an output-token cap, and the emulator stops a reply there as the
  API does (``response.done`` status ``incomplete``, reason ``max_output_tokens``).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from livekit.agents import llm

from agent.realtime_model import RealtimeModel, output_token_cap
from tests.support.provider_emulators import ProviderEmulators

TAIL = "Shall I go on?"
# 30 sentences, 10 words each: 300 words, with markdown.
LONG = "\n".join(f"- **Point {i}** is one more thing you should know about." for i in range(1, 31))


async def test_text_mode_reply_is_cut_at_the_word_limit(emulators: ProviderEmulators) -> None:
    emulators.script(llm=[{"text": LONG}])
    model = RealtimeModel(
        max_reply_words=40,
        reply_tail=TAIL,
        modalities=["text"],
        base_url=emulators.base_urls["openai"],
        api_key="emulator",
    )
    session = model.session()
    try:
        ctx = llm.ChatContext()
        ctx.add_message(role="user", content="Tell me everything.")
        await session.update_chat_ctx(ctx)
        generation = await asyncio.wait_for(session.generate_reply(), 10)
        text = ""
        async for message in generation.message_stream:
            async for delta in message.text_stream:
                text += delta
    finally:
        await session.aclose()
        await model.aclose()

    words = text.split()
    assert len(words) <= 40 and text.endswith(TAIL), text
    assert text.startswith("Point 1 is one more thing you should know about. Point 2 is")
    assert "*" not in text and "-" not in text  # what TTS would read out is plain speech
    sessions = [r["session"] for r in emulators.log("realtime") if r.get("event") == "session"]
    assert sessions[-1]["max_output_tokens"] == output_token_cap(40, audio=False)
    assert sessions[-1]["audio"]["input"]["turn_detection"]["create_response"] is False


@pytest.mark.parametrize("modality", ["text", "audio"])
async def test_emulator_stops_a_reply_at_max_output_tokens(
    emulators: ProviderEmulators, modality: str
) -> None:
    """The wire protocol, raw: a capped response ends early, as incomplete."""
    emulators.script(llm=[{"text": LONG}])
    url = emulators.base_urls["openai"].replace("http", "ws", 1) + "/realtime?model=gpt-realtime"
    events: list[dict] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"Authorization": "Bearer x"}) as ws,
    ):
        await ws.send_json(
            {"type": "session.update", "session": {"output_modalities": [modality], "max_output_tokens": 60}}
        )
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Everything."}]}
        await ws.send_json({"type": "conversation.item.create", "item": item})
        await ws.send_json({"type": "response.create"})
        async with asyncio.timeout(30):
            async for msg in ws:
                events.append(json.loads(msg.data))
                if events[-1]["type"] == "response.done":
                    break
    done = events[-1]["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    (message,) = [o for o in done["output"] if o["type"] == "message"]
    said = message["content"][0]["transcript" if modality == "audio" else "text"]
    assert 0 < len(said.split()) < len(LONG.split()) / 2, said
