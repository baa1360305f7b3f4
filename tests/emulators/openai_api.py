"""OpenAI emulator: ``/v1/chat/completions`` (SSE streaming and plain) and ``/v1/embeddings``.

Answers come from the LLM script queue (text and/or tool calls); with an empty queue the
answer is derived from the last user message so unscripted conversations still progress.
The SSE framing follows OpenAI's chunk objects exactly, since the real ``openai`` client that
``livekit.plugins.openai.LLM`` uses parses them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

from . import embedding, faults
from .state import EmulatorState

FINGERPRINT = "fp_emulator"


def _openai_error(status: int, message: str, kind: str = "server_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers={"x-request-id": f"req_{uuid.uuid4().hex}"})


def _check_auth(request: web.Request) -> web.Response | None:
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return _openai_error(401, "You didn't provide an API key.", "invalid_request_error")
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return _text_of(msg.get("content"))
    return ""


def default_answer(messages: list[dict[str, Any]]) -> str:
    said = last_user_text(messages).strip().rstrip(".?!")
    return f"You said: {said}." if said else "Hello! How can I help you today?"


def answer_from_tool(messages: list[dict[str, Any]]) -> str:
    """What a grounded model says after a knowledge-base tool call: the top passage's first
    sentence, or "I don't know" when the tool found nothing. Lets tests check that the spoken
    answer really comes from what retrieval returned, not from the script."""
    for msg in reversed(messages):
        if msg.get("role") != "tool":
            continue
        try:
            result = json.loads(_text_of(msg.get("content")))
        except ValueError:
            break
        passages = result.get("passages") or [] if isinstance(result, dict) else []
        if passages:
            first = re.split(r"(?<=[.!?])\s", str(passages[0].get("text", "")).strip(), maxsplit=1)[0]
            return first.lstrip("# ").strip()
        return "I'm sorry, I don't know that. Would you like me to connect you with a person?"
    return "There was no tool result to answer from."


def _tokens(text: str) -> list[str]:
    """Word-ish pieces with their leading space, the way OpenAI deltas look."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _tool_calls(item: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for i, call in enumerate(item.get("tool_calls") or []):
        args = call.get("arguments", {})
        calls.append(
            {
                "index": i,
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return calls


class OpenAIEmulator:
    """``provider`` names the fault/latency/log key; ``prefix`` mounts a second, independent
    OpenAI-compatible endpoint (the fallback LLM: ``/fallback/v1``, key ``llm_fallback``)."""

    def __init__(self, state: EmulatorState, *, provider: str = "llm", prefix: str = "") -> None:
        self.state = state
        self.provider = provider
        self.prefix = prefix

    def routes(self) -> list[web.RouteDef]:
        if self.prefix:
            return [
                web.post(f"{self.prefix}/v1/chat/completions", self.chat_completions),
                web.get(f"{self.prefix}/v1/models", self.models),
            ]
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/embeddings", self.embeddings),
            web.get("/v1/models", self.models),
        ]

    async def models(self, request: web.Request) -> web.Response:
        ids = ["gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "text-embedding-3-small"]
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "emulator"} for m in ids]}
        )

    # chat ------------------------------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        if (denied := _check_auth(request)) is not None:
            return denied
        body = await request.json()
        messages: list[dict[str, Any]] = body.get("messages") or []
        tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
        user_text = last_user_text(messages)
        fault = self.state.take_fault(self.provider)
        # A faulted request leaves its scripted answer for the retry or the fallback LLM.
        item = self.state.next_llm_item(user_text, consume=fault is None) or {
            "text": default_answer(messages)
        }
        if item.get("answer_from_tool"):
            item = {"text": answer_from_tool(messages)}
        self.state.record(
            self.provider,
            "request",
            model=body.get("model"),
            stream=bool(body.get("stream")),
            messages=messages,
            tools=tools,
            tool_choice=body.get("tool_choice"),
            last_user=user_text,
            answer=item,
            fault=fault,
        )
        if fault == "http_500":
            return _openai_error(500, "The server had an error while processing your request.")
        latency = self.state.latency[self.provider]
        if latency.first_ms:
            await asyncio.sleep(latency.first_ms / 1000)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        model = body.get("model") or "gpt-4o-mini"
        if not body.get("stream"):
            if fault == "stall":
                await faults.stall(request)
            return web.json_response(self._completion(completion_id, model, item, messages))
        return await self._stream(request, body, completion_id, model, item, messages, fault)

    def _usage(self, messages: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any]:
        prompt = sum(len(_text_of(m.get("content")).split()) + 4 for m in messages)
        completion = len(str(item.get("text") or "").split()) + 8 * len(item.get("tool_calls") or [])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _completion(
        self, cid: str, model: str, item: dict[str, Any], messages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        calls = _tool_calls(item)
        message: dict[str, Any] = {"role": "assistant", "content": item.get("text"), "refusal": None}
        if calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": self._usage(messages, item),
        }

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        cid: str,
        model: str,
        item: dict[str, Any],
        messages: list[dict[str, Any]],
        fault: str | None,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{uuid.uuid4().hex}",
            }
        )
        await resp.prepare(request)
        if fault == "stall":
            await faults.stall(request)
            return resp
        try:
            await self._write_chunks(request, resp, body, cid, model, item, messages, fault)
        except ConnectionResetError:  # the agent cancelled the generation (interruption)
            pass
        return resp

    async def _write_chunks(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        body: dict[str, Any],
        cid: str,
        model: str,
        item: dict[str, Any],
        messages: list[dict[str, Any]],
        fault: str | None,
    ) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())
        rate = self.state.latency[self.provider].rate

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
        deltas += [{"content": tok} for tok in _tokens(str(item.get("text") or ""))]
        for call in _tool_calls(item):
            args = call["function"]["arguments"]
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": call["index"],
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            for i in range(0, len(args), 16):
                deltas.append(
                    {"tool_calls": [{"index": call["index"], "function": {"arguments": args[i : i + 16]}}]}
                )
        finish = "tool_calls" if item.get("tool_calls") else "stop"

        sent_content = 0
        for delta in deltas:
            if fault == "disconnect" and sent_content >= 2:
                faults.drop(request)
                return
            await resp.write(f"data: {json.dumps(chunk(delta))}\n\n".encode())
            if delta.get("content"):
                sent_content += 1
                if rate > 0:
                    await asyncio.sleep(1 / rate)
        if fault == "disconnect":  # answer too short to cut mid-text: cut before finishing
            faults.drop(request)
            return
        await resp.write(f"data: {json.dumps(chunk({}, finish))}\n\n".encode())
        if include_usage:
            final = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [],
                "usage": self._usage(messages, item),
            }
            await resp.write(f"data: {json.dumps(final)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()

    # embeddings ------------------------------------------------------------------------------
    async def embeddings(self, request: web.Request) -> web.Response:
        if (denied := _check_auth(request)) is not None:
            return denied
        body = await request.json()
        raw = body.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            raw = [raw]
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in raw or []]
        dims = int(body.get("dimensions") or embedding.DEFAULT_DIMENSIONS)
        fault = self.state.take_fault("embeddings")
        self.state.record(
            "embeddings",
            "request",
            model=body.get("model"),
            count=len(texts),
            dimensions=dims,
            texts=[t[:200] for t in texts],
            fault=fault,
        )
        if fault == "http_500":
            return _openai_error(500, "The server had an error while processing your request.")
        if fault == "disconnect":
            faults.drop(request)
            return web.Response(status=500)
        if fault == "stall":
            await faults.stall(request)
        if first_ms := self.state.latency["embeddings"].first_ms:
            await asyncio.sleep(first_ms / 1000)
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = embedding.embed(text, dims)
            value: Any = base64.b64encode(vec.astype("<f4").tobytes()).decode() if as_b64 else vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(t.split()) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or "text-embedding-3-small",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
