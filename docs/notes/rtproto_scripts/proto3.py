import asyncio, json, uuid, time, logging
from aiohttp import web
from livekit.plugins.openai.realtime import RealtimeModel
from livekit.agents import llm
def rid(p): return f"{p}_{uuid.uuid4().hex[:12]}"
conns = []
async def ws_handler(request):
    ws = web.WebSocketResponse(); await ws.prepare(request)
    log = []; conns.append(log); n = len(conns)
    async def send(ev): ev.setdefault("event_id", rid("event")); await ws.send_str(json.dumps(ev))
    async for msg in ws:
        ev = json.loads(msg.data); log.append((round(time.monotonic()%100,2), ev["type"], ev.get("item", {}).get("id"), ev.get("previous_item_id")))
        if ev["type"] == "conversation.item.create":
            await send({"type": "conversation.item.added", "previous_item_id": None if ev.get("previous_item_id") == "root" else ev.get("previous_item_id"), "item": ev["item"]})
            if n == 1 and len([l for l in log if l[1] == "conversation.item.create"]) == 2:
                request.transport.abort(); break
    return ws
async def main():
    app = web.Application(); app.router.add_get("/v1/realtime", ws_handler)
    runner = web.AppRunner(app); await runner.setup(); site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    port = site._server.sockets[0].getsockname()[1]
    m = RealtimeModel(api_key="emulator", base_url=f"http://127.0.0.1:{port}/v1")
    s = m.session()
    s.on("session_reconnected", lambda ev: print("RECONNECTED"))
    s.on("error", lambda ev: print("ERROR", ev.recoverable, ev.error))
    await s.update_instructions("Be brief.")
    ctx = llm.ChatContext(); ctx.add_message(role="assistant", content="Hi", id="a1"); ctx.add_message(role="user", content="hours?", id="u1")
    await s.update_chat_ctx(ctx)
    await asyncio.sleep(1.0)
    print("mirror", [i.id for i in s.chat_ctx.items])
    await s.aclose(); await runner.cleanup()
    for i, c in enumerate(conns): print("conn", i, c)
asyncio.run(main())
