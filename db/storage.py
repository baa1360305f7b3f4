"""Call recordings: store the agent's OGG/Opus file and hand operators short-lived signed URLs.

Two backends behind one API, so the worker and the token server never care which is in use:

- ``local``: files under ``RECORDINGS_DIR``; the token server serves them at
  ``/recordings/<path>?expires=&signature=`` where the signature is an HMAC-SHA256 (key
  ``RECORDINGS_SIGNING_SECRET``) of the path and expiry, so a URL cannot be altered or reused
  after it expires. Worker and token server must share the directory and the secret.
- ``supabase``: a private Supabase Storage bucket through supabase-py's storage client
  (``storage3``), with Supabase's own signed URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError

log = logging.getLogger(__name__)

CONTENT_TYPE = "audio/ogg"
NON_PRODUCTION_ENVS = frozenset({"dev", "test"})
# Fixed, public, dev/test-only key: worker and token server are separate processes and must agree
# without configuration; it is refused in production (see StorageSettings).
DEV_SIGNING_SECRET = "voicedesk-dev-recordings-signing-secret-not-for-production"
# calls/2026/11/21/<uuid>.ogg and anything shaped like it: plain segments, no dot segments.
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}"
_STORAGE_PATH = re.compile(rf"^{_SEGMENT}(/{_SEGMENT}){{0,15}}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_.\-]{1,62}$")
UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
API_TIMEOUT = httpx.Timeout(15.0, connect=10.0)


class StorageSettings(BaseSettings):
    """Where recordings live and how their URLs are signed; shared by the worker and token server."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    app_env: Literal["dev", "test", "production"] = Field(
        default="production",
        description="Deployment environment; outside dev and test a real RECORDINGS_SIGNING_SECRET "
        "is required for the local backend.",
        examples=["dev"],
    )
    recordings_backend: Literal["local", "supabase"] = Field(
        default="local",
        description="Where call recordings are stored: a local directory, or Supabase Storage.",
        examples=["supabase"],
    )
    recordings_dir: Path = Field(
        default=Path("/var/tmp/voicedesk/recordings"),
        description="Directory of the local backend (shared by the worker and the token server).",
        examples=["/var/lib/voicedesk/recordings"],
    )
    supabase_url: str | None = Field(
        default=None,
        validate_default=True,
        description="Supabase project URL (the Storage API is at <url>/storage/v1); required when "
        "RECORDINGS_BACKEND=supabase.",
        examples=["https://abcdefghijklmnop.supabase.co"],
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="Supabase service-role key, used server-side only to upload recordings and sign "
        "their URLs; required when RECORDINGS_BACKEND=supabase.",
        examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."],
    )
    recordings_bucket: str = Field(
        default="call-recordings",
        description="Supabase Storage bucket for recordings; created private if missing, refused if public.",
        examples=["call-recordings"],
    )
    recording_url_ttl_seconds: int = Field(
        default=300,
        ge=10,
        le=7 * 86_400,
        description="Lifetime of a signed recording URL, in seconds.",
        examples=[300],
    )
    recordings_signing_secret: SecretStr | None = Field(
        default=None,
        validate_default=True,
        description="HMAC key signing local recording URLs (at least 32 characters; the worker and "
        "token server must share it); required outside APP_ENV dev/test with the local backend.",
        examples=["3f9c0e4b8a1d4c7e9b2f6a5d8c1e0f7a"],
    )

    @field_validator("supabase_url")
    @classmethod
    def _supabase_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("recordings_backend") == "supabase":
                raise ValueError("SUPABASE_URL is required when RECORDINGS_BACKEND=supabase")
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("supabase_service_role_key")
    @classmethod
    def _service_role_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("recordings_backend") == "supabase" and (
            value is None or not value.get_secret_value().strip()
        ):
            raise ValueError(
                "SUPABASE_SERVICE_ROLE_KEY is required when RECORDINGS_BACKEND=supabase "
                "(Project Settings > API > service_role key)"
            )
        return value

    @field_validator("recordings_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError("must be 2-63 lowercase letters, digits, '_', '.' or '-'")
        return value

    @field_validator("recordings_signing_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        app_env = info.data.get("app_env")
        local = info.data.get("recordings_backend") == "local"
        if value is None and local and app_env not in NON_PRODUCTION_ENVS:
            raise ValueError(
                f"RECORDINGS_SIGNING_SECRET is required with RECORDINGS_BACKEND=local when "
                f"APP_ENV={app_env or '?'}: it signs recording URLs, and the worker and token server "
                "must share it (generate one with `openssl rand -hex 32`)"
            )
        return value

    def signing_key(self) -> bytes:
        """The HMAC key: the configured secret, or the fixed dev key (only reachable in dev/test)."""
        if self.recordings_signing_secret is not None:
            return self.recordings_signing_secret.get_secret_value().encode()
        if self.app_env not in NON_PRODUCTION_ENVS:  # settings refuse this; guard direct construction
            raise RuntimeError("RECORDINGS_SIGNING_SECRET is required outside dev and test")
        return DEV_SIGNING_SECRET.encode()


class StorageError(RuntimeError):
    """The storage backend refused or could not be reached; the message says which and why."""


class RecordingNotFound(StorageError):
    """The backend has no object at that path."""


def recording_path(call_id: uuid.UUID, recorded_at: datetime) -> str:
    """``calls/YYYY/MM/DD/<call_id>.ogg``: dated folders keep listings small; the id keeps it unique."""
    day = recorded_at.astimezone(UTC)
    return f"calls/{day:%Y/%m/%d}/{call_id}.ogg"


def is_valid_path(path: str) -> bool:
    """A relative path of plain segments: no '..', no leading '/', no backslashes or control chars."""
    return bool(_STORAGE_PATH.match(path)) and not any(part in {".", ".."} for part in path.split("/"))


def _require_valid_path(path: str) -> str:
    if not is_valid_path(path):
        raise ValueError(f"not a recording path: {path!r}")
    return path


# --- upload -------------------------------------------------------------------------------------


async def upload_recording(settings: StorageSettings, call_id: uuid.UUID, file: Path) -> str:
    """Store ``file`` as the recording of ``call_id`` and return its storage path.

    The path is dated by the file's modification time (when the recording was finished), so
    uploading the same file again - a retry, a replay after a crash - lands on the same path
    and overwrites it.
    """
    stat = await asyncio.to_thread(file.stat)
    path = recording_path(call_id, datetime.fromtimestamp(stat.st_mtime, UTC))
    if settings.recordings_backend == "local":
        await asyncio.to_thread(_copy_into, settings.recordings_dir, path, file)
    else:
        data = await asyncio.to_thread(file.read_bytes)
        async with _supabase(settings, http_timeout=UPLOAD_TIMEOUT) as client:
            await _ensure_private_bucket(client, settings)
            try:
                await client.from_(settings.recordings_bucket).upload(
                    path, data, file_options={"upsert": "true", "content-type": CONTENT_TYPE}
                )
            except StorageApiError as exc:
                raise StorageError(f"Supabase Storage refused the upload of {path}: {exc.message}") from exc
    log.info("stored recording call_id=%s path=%s bytes=%d", call_id, path, stat.st_size)
    return path


def _copy_into(root: Path, path: str, source: Path) -> None:
    """Write via a temporary file and rename, so a reader never sees half a recording."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o640)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# --- signed URLs --------------------------------------------------------------------------------


async def signed_recording_url(
    settings: StorageSettings, path: str, *, public_base_url: str
) -> tuple[str, datetime]:
    """A URL that plays the recording at ``path`` until the returned expiry (UTC)."""
    _require_valid_path(path)
    ttl = settings.recording_url_ttl_seconds
    if settings.recordings_backend == "local":
        expires = int(time.time()) + ttl
        query = urlencode({"expires": expires, "signature": local_signature(settings, path, expires)})
        url = f"{public_base_url.rstrip('/')}/recordings/{quote(path)}?{query}"
        return url, datetime.fromtimestamp(expires, UTC)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    async with _supabase(settings, http_timeout=API_TIMEOUT) as client:
        try:
            signed = await client.from_(settings.recordings_bucket).create_signed_url(path, ttl)
        except StorageApiError as exc:
            if _is_not_found(exc):
                raise RecordingNotFound(f"no recording at {path} in Supabase Storage") from exc
            raise StorageError(f"Supabase Storage cannot sign {path}: {exc.message}") from exc
    url = signed.get("signedURL") or signed.get("signedUrl")
    if not url:
        raise StorageError(f"Supabase Storage returned no signed URL for {path}")
    return url, expires_at


def local_signature(settings: StorageSettings, path: str, expires: int) -> str:
    """Hex HMAC-SHA256 over a version tag, the path and the expiry (so neither can be changed)."""
    message = f"recording:v1\n{path}\n{expires}".encode()
    return hmac.new(settings.signing_key(), message, hashlib.sha256).hexdigest()


def verify_local_signature(settings: StorageSettings, path: str, expires: int | str, signature: str) -> bool:
    """True only for an unexpired URL this service signed for exactly ``path`` (constant time)."""
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    if not is_valid_path(path) or not signature.isascii() or expires_at < time.time():
        return False
    expected = local_signature(settings, path, expires_at)
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def local_file(settings: StorageSettings, path: str) -> Path | None:
    """The file for ``path`` inside RECORDINGS_DIR, or None; never a file outside it (symlinks too)."""
    if not is_valid_path(path):
        return None
    root = settings.recordings_dir.resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


async def recording_exists(settings: StorageSettings, path: str) -> bool:
    """Whether a local recording is present; Supabase objects are assumed present (signing checks)."""
    if settings.recordings_backend != "local":
        return True
    return await asyncio.to_thread(local_file, settings, path) is not None


# --- Supabase -----------------------------------------------------------------------------------


@asynccontextmanager
async def _supabase(
    settings: StorageSettings, *, http_timeout: httpx.Timeout
) -> AsyncIterator[AsyncStorageClient]:
    """supabase-py's Storage client, authenticated as the service role (server side only)."""
    assert settings.supabase_url is not None and settings.supabase_service_role_key is not None
    key = settings.supabase_service_role_key.get_secret_value()
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    http = httpx.AsyncClient(headers=headers, timeout=http_timeout, follow_redirects=True)
    async with http:
        try:
            yield AsyncStorageClient(f"{settings.supabase_url}/storage/v1/", headers, http_client=http)
        except httpx.HTTPError as exc:
            raise StorageError(f"Supabase Storage at {settings.supabase_url} is unreachable: {exc}") from exc


_ensured_buckets: set[tuple[str | None, str]] = set()  # checked once per process


async def _ensure_private_bucket(client: AsyncStorageClient, settings: StorageSettings) -> None:
    """Create the bucket private if missing; refuse a public one (recordings are personal data)."""
    bucket = settings.recordings_bucket
    key = (settings.supabase_url, bucket)
    if key in _ensured_buckets:
        return
    try:
        existing = await client.get_bucket(bucket)
    except StorageApiError as exc:
        if not _is_not_found(exc):
            raise StorageError(f"cannot read Supabase Storage bucket {bucket!r}: {exc.message}") from exc
        try:
            await client.create_bucket(bucket, options={"public": False})
            log.info("created private Supabase Storage bucket %s", bucket)
        except StorageApiError as create_exc:
            # Another worker may have created it meanwhile; anything else is a real failure.
            if str(create_exc.status) != "409" and "exist" not in str(create_exc.message).lower():
                raise StorageError(
                    f"cannot create Supabase Storage bucket {bucket!r}: {create_exc.message}"
                ) from create_exc
    else:
        if existing.public:
            raise StorageError(
                f"Supabase Storage bucket {bucket!r} is public: recordings must be private; make it "
                "private or set RECORDINGS_BUCKET to another bucket"
            )
    _ensured_buckets.add(key)


def _is_not_found(exc: StorageApiError) -> bool:
    # Supabase answers a missing bucket with HTTP 400 and statusCode "404" (newer versions: 404).
    return str(exc.status) == "404" or "not found" in str(exc.message).lower()
