"""Smoke check: minimal server event set vs the real RealtimeSession (in-process, no LiveKit)."""
import asyncio, base64, json, uuid
from aiohttp import web
from livekit.agents import llm, function_tool
from livekit.plugins.openai.realtime import RealtimeModel

received = []

def rid(p): return f"{p}_{uuid.uuid4().hex[:12]}"

async def ws_handler(request):
    ws = web.WebSocketResponse(); await ws.prepare(request)
    print("URL", request.path_qs, request.headers.get("Authorization"))
    async def send(ev): ev.setdefault("event_id", rid("event")); await ws.send_str(json.dumps(ev))
    await send({"type": "session.created", "session": {}})
    last = None
    async for msg in ws:
        ev = json.loads(msg.data); received.append(ev["type"])
        if ev["type"] == "conversation.item.create":
            item = ev["item"]; item.setdefault("id", rid("item"))
            await send({"type": "conversation.item.added", "previous_item_id": None if ev.get("previous_item_id") == "root" else ev.get("previous_item_id"), "item": item})
            last = item["id"]
        elif ev["type"] == "response.create":
            resp_id = rid("resp"); meta = (ev.get("response") or {}).get("metadata")
            await send({"type": "response.created", "response": {"id": resp_id, "object": "realtime.response", "status": "in_progress", "metadata": meta, "output": []}})
            tool = received.count("response.create") == 1 and False
            if received.count("response.create") == 2:
                fid = rid("item")
                fc = {"id": fid, "type": "function_call", "call_id": "call_abc", "name": "lookup", "arguments": "", "status": "in_progress"}
                await send({"type": "response.output_item.added", "response_id": resp_id, "output_index": 0, "item": fc})
                await send({"type": "conversation.item.added", "previous_item_id": last, "item": fc})
                done = dict(fc, arguments='{"q": "x"}', status="completed")
                await send({"type": "response.output_item.done", "response_id": resp_id, "output_index": 0, "item": done})
                await send({"type": "response.done", "response": {"id": resp_id, "status": "completed", "output": [done], "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})
                last = fid
                continue
            iid = rid("item")
            item = {"id": iid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
            await send({"type": "response.output_item.added", "response_id": resp_id, "output_index": 0, "item": item})
            await send({"type": "conversation.item.added", "previous_item_id": last, "item": item})
            await send({"type": "response.content_part.added", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}})
            for w in ["Hello", " there."]:
                await send({"type": "response.output_audio_transcript.delta", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "delta": w})
            pcm = b"\x10\x00" * 2400
            await send({"type": "response.output_audio.delta", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "delta": base64.b64encode(pcm).decode()})
            await send({"type": "response.output_audio.done", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0})
            done = dict(item, status="completed", content=[{"type": "output_audio", "transcript": "Hello there."}])
            await send({"type": "response.output_item.done", "response_id": resp_id, "output_index": 0, "item": done})
            await send({"type": "response.done", "response": {"id": resp_id, "status": "completed", "output": [done], "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}})
            last = iid
    return ws

async def main():
    app = web.Application(); app.router.add_get("/v1/realtime", ws_handler)
    runner = web.AppRunner(app); await runner.setup(); site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    port = site._server.sockets[0].getsockname()[1]
    m = RealtimeModel(api_key="emulator", base_url=f"http://127.0.0.1:{port}/v1")
    s = m.session()
    @function_tool()
    async def lookup(q: str) -> str:
        """look up"""
        return "ok"
    await s._update_session(instructions="Be brief.", tools=[lookup])
    for n in range(2):
        gen = await asyncio.wait_for(s.generate_reply(), 5)
        print("generation", gen.response_id, gen.user_initiated)
        async def msgs():
            async for mg in gen.message_stream:
                mods = await mg.modalities
                text = "".join([t async for t in mg.text_stream]); frames = [f async for f in mg.audio_stream]
                print(" message", mg.message_id, mods, repr(text), len(frames), "frames")
        async def fns():
            async for fc in gen.function_stream: print(" function", fc.name, fc.call_id, fc.arguments)
        await asyncio.gather(msgs(), fns())
    ctx = s.chat_ctx.copy()
    fc = [i for i in ctx.items if i.type == "function_call"][0]
    ctx.items.append(llm.FunctionCallOutput(call_id=fc.call_id, output="ok", is_error=False))
    await s.update_chat_ctx(ctx)
    print("remote ctx", [(i.type, getattr(i, 'role', None), getattr(i, 'arguments', None) or getattr(i, 'content', None)) for i in s.chat_ctx.items])
    await s.aclose(); await runner.cleanup()
    print("client events", received)
asyncio.run(main())
