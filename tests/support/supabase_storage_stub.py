"""A local stand-in for the Supabase Storage REST API, as far as supabase-py's storage3 uses it.

Endpoints (under ``/storage/v1``, the paths storage3 2.x requests; see ``storage3/_async``):

- ``GET  /bucket/{id}``                    get_bucket; a missing bucket answers like Supabase
  (HTTP 400, ``statusCode: "404"``, ``Bucket not found``)
- ``POST /bucket``                         create_bucket (JSON ``id``, ``name``, ``public``)
- ``POST /object/{bucket}/{path}``         upload: multipart ``file`` part; ``x-upsert: true``
  overwrites, otherwise an existing object is a 409 ``Duplicate``
- ``POST /object/sign/{bucket}/{path}``    create_signed_url (JSON ``expiresIn``) -> ``signedURL``
- ``GET  /object/sign/{bucket}/{path}?token=``  the signed download itself

Every request must carry the service-role key as ``apikey`` and ``Authorization: Bearer``. Each
request is recorded (method, path, headers, JSON or multipart parts) for assertions.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/storage/v1"


@dataclass
class RecordedPart:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str  # decoded, without PREFIX and query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_path: str = ""
    json: Any = None
    parts: list[RecordedPart] = field(default_factory=list)


@dataclass
class StoredObject:
    data: bytes
    content_type: str


class SupabaseStorageStub:
    """Threaded HTTP server on 127.0.0.1; ``url`` is what SUPABASE_URL would be."""

    def __init__(self, service_role_key: str) -> None:
        self.service_role_key = service_role_key
        self.buckets: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.tokens: dict[str, tuple[str, str, int]] = {}  # token -> (bucket, path, expires_in)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_bucket(self, bucket: str, *, public: bool) -> None:
        self.buckets[bucket] = _bucket_json(bucket, public)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- request handling ---------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(parsed.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = RecordedRequest(
            method, path.removeprefix(PREFIX), urllib.parse.parse_qs(parsed.query), headers, raw_path=path
        )
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/json") and body:
            record.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            record.parts = _parse_multipart(content_type, body)
        with self._lock:
            self.requests.append(record)
            status, payload, ctype = self._route(record)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, req: RecordedRequest) -> tuple[int, Any, str]:
        if not req.raw_path.startswith(PREFIX + "/"):
            return _error(404, "not found")
        signed_download = req.method == "GET" and req.path.startswith("/object/sign/")
        if not signed_download and (
            req.headers.get("apikey") != self.service_role_key
            or req.headers.get("authorization") != f"Bearer {self.service_role_key}"
        ):
            return _error(403, "Invalid JWT", code="Unauthorized", http_status=400)
        parts = req.path.strip("/").split("/")
        match req.method, parts:
            case "GET", ["bucket", bucket]:
                if bucket not in self.buckets:
                    return _error(404, "Bucket not found", code="Bucket not found", http_status=400)
                return 200, self.buckets[bucket], "application/json"
            case "POST", ["bucket"]:
                bucket = req.json["id"]
                if bucket in self.buckets:
                    return _error(409, "The resource already exists", code="Duplicate", http_status=400)
                self.buckets[bucket] = _bucket_json(bucket, bool(req.json.get("public", False)))
                return 200, {"name": bucket}, "application/json"
            case "POST", ["object", "sign", bucket, *rest]:
                key = (bucket, "/".join(rest))
                if key not in self.objects:
                    return _error(404, "Object not found", code="not_found", http_status=400)
                token = secrets.token_urlsafe(16)
                self.tokens[token] = (bucket, key[1], int(req.json["expiresIn"]))
                quoted = urllib.parse.quote(key[1])
                return 200, {"signedURL": f"/object/sign/{bucket}/{quoted}?token={token}"}, "application/json"
            case "GET", ["object", "sign", bucket, *rest]:
                token = (req.query.get("token") or [""])[0]
                if self.tokens.get(token, ("", "", 0))[:2] != (bucket, "/".join(rest)):
                    return _error(400, "invalid signature", code="InvalidSignature")
                obj = self.objects[(bucket, "/".join(rest))]
                return 200, obj.data, obj.content_type
            case "POST", ["object", bucket, *rest] if rest:
                if bucket not in self.buckets:
                    return _error(404, "Bucket not found", code="Bucket not found", http_status=400)
                key = (bucket, "/".join(rest))
                if key in self.objects and req.headers.get("x-upsert") != "true":
                    return _error(409, "The resource already exists", code="Duplicate", http_status=400)
                file_part = next((p for p in req.parts if p.name == "file"), None)
                if file_part is None:
                    return _error(400, "no file part", code="InvalidRequest")
                self.objects[key] = StoredObject(file_part.data, file_part.content_type)
                return 200, {"Key": f"{bucket}/{key[1]}", "Id": secrets.token_hex(16)}, "application/json"
        return _error(404, "not found")


def _bucket_json(bucket: str, public: bool) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": bucket,
        "name": bucket,
        "owner": "",
        "public": public,
        "file_size_limit": None,
        "allowed_mime_types": None,
        "created_at": now,
        "updated_at": now,
    }


def _error(
    status: int, message: str, *, code: str = "Error", http_status: int | None = None
) -> tuple[int, Any, str]:
    """Supabase Storage's error body; like the real service, HTTP status and statusCode may differ."""
    body = {"statusCode": str(status), "error": code, "message": message}
    return http_status or status, body, "application/json"


def _parse_multipart(content_type: str, body: bytes) -> list[RecordedPart]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        parts.append(
            RecordedPart(
                name=part.get_param("name", header="content-disposition") or "",
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("Content-Type") else "",
                data=part.get_payload(decode=True) or b"",
            )
        )
    return parts
