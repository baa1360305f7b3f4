"""Drive the real RealtimeSession against tests.emulators (in-process): audio reply, tool call, tool output ack."""
import asyncio, sys
sys.path.insert(0, "/work/wip7")
from aiohttp import web
from livekit.agents import llm, function_tool
from livekit.plugins.openai.realtime import RealtimeModel
from tests.emulators.server import build_app
from tests.emulators.state import EmulatorState

async def main():
    state = EmulatorState()
    state.add_script({"llm": [{"text": "Hello there, how can I help?"}, {"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}]})
    runner = web.AppRunner(build_app(state)); await runner.setup(); site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    port = site._server.sockets[0].getsockname()[1]
    m = RealtimeModel(api_key="emulator", base_url=f"http://127.0.0.1:{port}/v1")
    s = m.session()
    @function_tool()
    async def lookup(q: str) -> str:
        """look up"""
        return "ok"
    await s._update_session(instructions="Be brief.", tools=[lookup])
    for n in range(2):
        gen = await asyncio.wait_for(s.generate_reply(), 8)
        print("generation", gen.response_id, gen.user_initiated)
        async def msgs():
            async for mg in gen.message_stream:
                mods = await mg.modalities
                text = "".join([t async for t in mg.text_stream]); frames = [f async for f in mg.audio_stream]
                print(" message", mg.message_id, mods, repr(text), len(frames), "frames", sum(f.samples_per_channel for f in frames)/24000, "s")
        async def fns():
            async for fc in gen.function_stream: print(" function", fc.name, fc.call_id, fc.arguments)
        await asyncio.gather(msgs(), fns())
    ctx = s.chat_ctx.copy()
    fc = [i for i in ctx.items if i.type == "function_call"][0]
    ctx.items.append(llm.FunctionCallOutput(call_id=fc.call_id, output="ok", is_error=False))
    await asyncio.wait_for(s.update_chat_ctx(ctx), 6)
    print("remote ctx", [(i.type, getattr(i, 'role', None)) for i in s.chat_ctx.items])
    await s.aclose(); await runner.cleanup()
    print("log", [(e["event"]) for e in state.log("realtime")])
asyncio.run(main())
