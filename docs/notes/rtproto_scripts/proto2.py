import asyncio, base64, json, uuid
from aiohttp import web
from livekit.plugins.openai.realtime import RealtimeModel
def rid(p): return f"{p}_{uuid.uuid4().hex[:12]}"
received = []
async def ws_handler(request):
    ws = web.WebSocketResponse(); await ws.prepare(request)
    async def send(ev): ev.setdefault("event_id", rid("event")); await ws.send_str(json.dumps(ev))
    n_audio = 0
    async for msg in ws:
        ev = json.loads(msg.data); received.append(ev["type"])
        if ev["type"] != "input_audio_buffer.append": continue
        n_audio += 1
        if n_audio != 3: continue
        uid = rid("item")
        await send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 100, "item_id": uid})
        await send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": uid})
        await send({"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": uid})
        await send({"type": "conversation.item.added", "previous_item_id": None, "item": {"id": uid, "type": "message", "role": "user", "status": "completed", "content": [{"type": "input_audio", "transcript": None}]}})
        resp_id = rid("resp")
        await send({"type": "response.created", "response": {"id": resp_id, "status": "in_progress", "output": []}})
        await send({"type": "conversation.item.input_audio_transcription.delta", "item_id": uid, "content_index": 0, "delta": "What are your"})
        await send({"type": "conversation.item.input_audio_transcription.completed", "item_id": uid, "content_index": 0, "transcript": "What are your hours?", "usage": {"type": "duration", "seconds": 0.8}})
        iid = rid("item")
        item = {"id": iid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        await send({"type": "response.output_item.added", "response_id": resp_id, "output_index": 0, "item": item})
        await send({"type": "conversation.item.added", "previous_item_id": uid, "item": item})
        await send({"type": "response.content_part.added", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "part": {"type": "text", "text": ""}})
        for w in ["We open", " at nine."]:
            await send({"type": "response.output_text.delta", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "delta": w})
        await send({"type": "response.output_text.done", "response_id": resp_id, "item_id": iid, "output_index": 0, "content_index": 0, "text": "We open at nine."})
        await send({"type": "response.output_item.done", "response_id": resp_id, "output_index": 0, "item": dict(item, status="completed", content=[{"type": "output_text", "text": "We open at nine."}])})
        await send({"type": "response.done", "response": {"id": resp_id, "status": "completed"}})
    return ws
async def main():
    app = web.Application(); app.router.add_get("/v1/realtime", ws_handler)
    runner = web.AppRunner(app); await runner.setup(); site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    port = site._server.sockets[0].getsockname()[1]
    m = RealtimeModel(api_key="emulator", base_url=f"http://127.0.0.1:{port}/v1", modalities=["text"])
    s = m.session()
    done = asyncio.Event()
    for name in ("input_speech_started", "input_speech_stopped", "input_audio_transcription_completed", "remote_item_added"):
        s.on(name, lambda ev, name=name: print("EV", name, getattr(ev, "transcript", ""), getattr(ev, "is_final", "")))
    def on_gen(gen):
        async def consume():
            async for mg in gen.message_stream:
                print(" msg", await mg.modalities, repr("".join([t async for t in mg.text_stream])), len([f async for f in mg.audio_stream]))
            done.set()
        print("generation_created user_initiated=", gen.user_initiated, gen.response_id)
        asyncio.ensure_future(consume())
    s.on("generation_created", on_gen)
    from livekit import rtc
    for _ in range(5):
        s.push_audio(rtc.AudioFrame(b"\x00\x00" * 480, 48000, 1, 480))
        s.push_audio(rtc.AudioFrame(b"\x00\x00" * 4800, 48000, 1, 4800))
    await asyncio.wait_for(done.wait(), 5)
    print("remote ctx", [(i.type, i.role, i.content) for i in s.chat_ctx.items])
    s.truncate(message_id=s.chat_ctx.items[-1].id, modalities=["text"], audio_end_ms=500, audio_transcript="We open")
    await asyncio.sleep(0.3)
    await s.aclose(); await runner.cleanup()
    print("client events", [t for t in received if t != "input_audio_buffer.append"], received.count("input_audio_buffer.append"), "appends")
asyncio.run(main())
