"""Recording storage: the local backend served by the real token server, and the Supabase backend
against a local stand-in of the Storage REST API that supabase-py's storage3 really calls.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from db import storage
from db.storage import StorageError, StorageSettings, upload_recording
from tests.integration.conftest import RECORDING_URL_TTL_SECONDS, CallRows, SignedInOperator
from tests.support.supabase_storage_stub import SupabaseStorageStub
from tests.support.token_server import TokenServer
from voicedesk.config import SettingsError, load_settings

SERVICE_ROLE_KEY = "test-service-role-key-0123456789"


def recording_file(tmp_path: Path, size: int = 256_000, name: str = "call.ogg") -> Path:
    """Bytes shaped like an Ogg stream; the store treats recordings as opaque audio/ogg."""
    path = tmp_path / name
    path.write_bytes(b"OggS\x00\x02" + os.urandom(size - 6))
    return path


def recording_link(server: TokenServer, who: SignedInOperator, call_id: uuid.UUID) -> httpx.Response:
    return httpx.get(f"{server.url}/calls/{call_id}/recording", headers=who.headers, timeout=15)


# --- local backend, end to end ---------------------------------------------------------------------


async def test_local_recording_plays_through_a_signed_url(
    operator_server: TokenServer,
    operator: SignedInOperator,
    local_storage: StorageSettings,
    call_rows: CallRows,
    tmp_path: Path,
) -> None:
    call_id = uuid.uuid4()
    source = recording_file(tmp_path)
    recorded_at = datetime(2026, 11, 21, 23, 59, tzinfo=UTC)
    os.utime(source, (recorded_at.timestamp(), recorded_at.timestamp()))

    path = await upload_recording(local_storage, call_id, source)

    assert path == f"calls/2026/11/21/{call_id}.ogg"
    assert (local_storage.recordings_dir / path).read_bytes() == source.read_bytes()
    # Idempotent: uploading again (a retry) overwrites the same object.
    source.write_bytes(b"OggS" + os.urandom(100_000))
    os.utime(source, (recorded_at.timestamp(), recorded_at.timestamp()))
    assert await upload_recording(local_storage, call_id, source) == path
    assert (local_storage.recordings_dir / path).read_bytes() == source.read_bytes()
    assert not [p for p in (local_storage.recordings_dir / path).parent.iterdir() if p.name.startswith(".")]

    row_id = call_rows.call(started_at=recorded_at, recording_path=path, recording_duration_seconds=61.5)
    before = datetime.now(UTC)
    resp = recording_link(operator_server, operator, row_id)

    assert resp.status_code == 200, resp.text
    link = resp.json()
    assert set(link) == {"url", "expires_at"}
    expires_at = datetime.fromisoformat(link["expires_at"])
    assert before + timedelta(seconds=RECORDING_URL_TTL_SECONDS - 5) <= expires_at
    assert expires_at <= datetime.now(UTC) + timedelta(seconds=RECORDING_URL_TTL_SECONDS + 1)
    assert link["url"].startswith(f"{operator_server.url}/recordings/calls/2026/11/21/")

    async with httpx.AsyncClient(timeout=15) as http:  # no bearer token: the URL is the credential
        audio = await http.get(link["url"])
        # Seeking: an <audio> element asks for byte ranges.
        part = await http.get(link["url"], headers={"Range": "bytes=1000-1999"})
    assert audio.status_code == 200, audio.text
    assert audio.headers["content-type"] == "audio/ogg"
    assert audio.headers["accept-ranges"] == "bytes"
    assert audio.content == source.read_bytes()

    assert part.status_code == 206
    assert part.content == source.read_bytes()[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{source.stat().st_size}"


def signed(
    server: TokenServer, settings: StorageSettings, path: str, expires: int, signature: str | None = None
) -> str:
    sig = signature if signature is not None else storage.local_signature(settings, path, expires)
    return f"{server.url}/recordings/{quote(path)}?expires={expires}&signature={sig}"


@pytest.fixture
def stored_path(local_storage: StorageSettings, tmp_path: Path) -> Iterator[str]:
    path = f"calls/2026/11/22/{uuid.uuid4()}.ogg"
    target = local_storage.recordings_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"OggS" + os.urandom(1000))
    yield path
    target.unlink()


def test_valid_local_url_is_served(
    operator_server: TokenServer, local_storage: StorageSettings, stored_path: str
) -> None:
    resp = httpx.get(signed(operator_server, local_storage, stored_path, int(time.time()) + 60), timeout=15)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/ogg"


def test_expired_url_is_403(
    operator_server: TokenServer, local_storage: StorageSettings, stored_path: str
) -> None:
    expired = int(time.time()) - 1
    resp = httpx.get(signed(operator_server, local_storage, stored_path, expired), timeout=15)
    assert resp.status_code == 403
    assert "expired" in resp.json()["detail"]


def test_tampered_url_is_403(
    operator_server: TokenServer, local_storage: StorageSettings, stored_path: str
) -> None:
    expires = int(time.time()) + 60
    good = storage.local_signature(local_storage, stored_path, expires)
    flipped = ("0" if good[0] != "0" else "1") + good[1:]
    other_path = f"calls/2026/11/22/{uuid.uuid4()}.ogg"
    foreign_key = StorageSettings(
        _env_file=None,  # type: ignore[call-arg]
        app_env="test",
        recordings_dir=local_storage.recordings_dir,
        recordings_signing_secret="another-secret-of-at-least-32-characters",
    )
    attempts = {
        "signature changed": signed(operator_server, local_storage, stored_path, expires, flipped),
        "expiry extended": signed(operator_server, local_storage, stored_path, expires + 3600, good),
        "other path": signed(operator_server, local_storage, other_path, expires, good),
        "signed with another key": signed(operator_server, foreign_key, stored_path, expires),
        "no signature": signed(operator_server, local_storage, stored_path, expires, ""),
        "non-ascii signature": signed(operator_server, local_storage, stored_path, expires, "é" * 64),
    }
    for what, url in attempts.items():
        resp = httpx.get(url, timeout=15)
        assert resp.status_code == 403, (what, resp.status_code, resp.text)


def test_path_traversal_is_refused(
    operator_server: TokenServer, local_storage: StorageSettings, tmp_path: Path
) -> None:
    secret_file = local_storage.recordings_dir.parent / "outside.ogg"
    secret_file.write_bytes(b"not yours")
    (local_storage.recordings_dir / "calls").mkdir(exist_ok=True)
    link = local_storage.recordings_dir / "calls" / "link.ogg"
    link.unlink(missing_ok=True)
    link.symlink_to(secret_file)
    expires = int(time.time()) + 60
    paths = [
        "../outside.ogg",
        "calls/../../outside.ogg",
        "/etc/passwd",
        "calls/%2e%2e/%2e%2e/outside.ogg",
        "calls\\..\\..\\outside.ogg",
    ]
    for path in paths:
        # Even a correct signature (someone with the key) cannot leave RECORDINGS_DIR.
        sig = storage.local_signature(local_storage, path, expires)
        assert not storage.verify_local_signature(local_storage, path, expires, sig), path
        assert storage.local_file(local_storage, path) is None, path
        raw = f"{operator_server.url}/recordings/{quote(path, safe='/%')}?expires={expires}&signature={sig}"
        resp = httpx.get(raw, timeout=15)
        assert resp.status_code in (403, 404), (path, resp.status_code)
        assert resp.content != b"not yours"
    # A symlink inside the directory that points outside it is not followed either.
    symlink_url = signed(operator_server, local_storage, "calls/link.ogg", expires)
    assert httpx.get(symlink_url, timeout=15).status_code == 404
    assert storage.local_file(local_storage, "calls/link.ogg") is None


def test_recording_link_is_404_without_a_recording(
    operator_server: TokenServer, operator: SignedInOperator, call_rows: CallRows
) -> None:
    no_recording = call_rows.call(started_at=datetime.now(UTC))
    missing_file = call_rows.call(
        started_at=datetime.now(UTC), recording_path=f"calls/2026/11/21/{uuid.uuid4()}.ogg"
    )
    for call_id in (no_recording, missing_file, uuid.uuid4()):
        resp = recording_link(operator_server, operator, call_id)
        assert resp.status_code == 404, resp.text


# --- settings ----------------------------------------------------------------------------------------


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> StorageSettings:
    for key in (
        "APP_ENV",
        "RECORDINGS_BACKEND",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "RECORDINGS_SIGNING_SECRET",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(Path(os.environ.get("TMPDIR", "/tmp")))  # no .env from the checkout
    return load_settings(StorageSettings)


def test_supabase_backend_requires_its_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SettingsError):
        _load(
            monkeypatch, APP_ENV="test", RECORDINGS_BACKEND="supabase", SUPABASE_URL="https://x.supabase.co"
        )
    err = capsys.readouterr().err
    assert "SUPABASE_SERVICE_ROLE_KEY" in err
    assert "RECORDINGS_BACKEND=supabase" in err
    assert "example: SUPABASE_SERVICE_ROLE_KEY=" in err


def test_local_backend_requires_a_signing_secret_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SettingsError):
        _load(monkeypatch, APP_ENV="production")
    assert "RECORDINGS_SIGNING_SECRET" in capsys.readouterr().err
    with pytest.raises(SettingsError):
        _load(monkeypatch, APP_ENV="production", RECORDINGS_SIGNING_SECRET="short")
    assert "at least 32 characters" in capsys.readouterr().err
    settings = _load(monkeypatch, APP_ENV="production", RECORDINGS_SIGNING_SECRET="x" * 32)
    assert settings.signing_key() == b"x" * 32
    # dev and test share a fixed key, so a worker and a token server agree without configuration.
    assert _load(monkeypatch, APP_ENV="dev").signing_key() == _load(monkeypatch, APP_ENV="test").signing_key()


# --- Supabase backend against the Storage API stand-in -------------------------------------------


@pytest.fixture
def supabase_stub() -> Iterator[SupabaseStorageStub]:
    stub = SupabaseStorageStub(SERVICE_ROLE_KEY)
    yield stub
    stub.close()


def supabase_settings(stub: SupabaseStorageStub, bucket: str, ttl: int = 300) -> StorageSettings:
    return StorageSettings(
        _env_file=None,  # type: ignore[call-arg]
        app_env="production",
        recordings_backend="supabase",
        supabase_url=stub.url,
        supabase_service_role_key=SERVICE_ROLE_KEY,
        recordings_bucket=bucket,
        recording_url_ttl_seconds=ttl,
    )


async def test_supabase_upload_creates_a_private_bucket_and_upserts(
    supabase_stub: SupabaseStorageStub, tmp_path: Path
) -> None:
    bucket = f"rec-{uuid.uuid4().hex[:8]}"
    settings = supabase_settings(supabase_stub, bucket, ttl=240)
    call_id = uuid.uuid4()
    source = recording_file(tmp_path)
    finished = datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp()
    os.utime(source, (finished, finished))

    path = await upload_recording(settings, call_id, source)

    assert path == f"calls/2026/11/21/{call_id}.ogg"
    assert supabase_stub.buckets[bucket]["public"] is False
    (create,) = supabase_stub.requests_to("POST", "/bucket")
    assert create.json == {"id": bucket, "name": bucket, "public": False}
    (upload,) = supabase_stub.requests_to("POST", f"/object/{bucket}/")
    assert upload.path == f"/object/{bucket}/{path}"
    assert upload.headers["x-upsert"] == "true"
    assert upload.headers["authorization"] == f"Bearer {SERVICE_ROLE_KEY}"
    assert upload.headers["apikey"] == SERVICE_ROLE_KEY
    (file_part,) = [p for p in upload.parts if p.name == "file"]
    assert file_part.content_type == "audio/ogg"
    assert file_part.data == source.read_bytes()
    assert supabase_stub.objects[(bucket, path)].content_type == "audio/ogg"

    # Again (a retry): same path, overwritten, and the bucket is not created twice.
    source.write_bytes(b"OggS" + os.urandom(5000))
    os.utime(source, (finished, finished))
    assert await upload_recording(settings, call_id, source) == path
    assert supabase_stub.objects[(bucket, path)].data == source.read_bytes()
    assert len(supabase_stub.requests_to("POST", f"/object/{bucket}/")) == 2
    assert len(supabase_stub.requests_to("POST", "/bucket")) == 1

    url, expires_at = await storage.signed_recording_url(settings, path, public_base_url="http://unused")

    (sign,) = supabase_stub.requests_to("POST", "/object/sign/")
    assert sign.path == f"/object/sign/{bucket}/{path}"
    assert sign.json == {"expiresIn": "240"}
    assert sign.headers["authorization"] == f"Bearer {SERVICE_ROLE_KEY}"
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == supabase_stub.url
    assert parts.path == f"/storage/v1/object/sign/{bucket}/{path}"
    assert parse_qs(parts.query)["token"]
    now = datetime.now(UTC)
    assert now + timedelta(seconds=230) < expires_at <= now + timedelta(seconds=240)
    async with httpx.AsyncClient(timeout=15) as http:
        download = await http.get(url)
    assert download.status_code == 200
    assert download.content == supabase_stub.objects[(bucket, path)].data


async def test_supabase_existing_private_bucket_is_used(
    supabase_stub: SupabaseStorageStub, tmp_path: Path
) -> None:
    bucket = f"rec-{uuid.uuid4().hex[:8]}"
    supabase_stub.add_bucket(bucket, public=False)

    path = await upload_recording(
        supabase_settings(supabase_stub, bucket), uuid.uuid4(), recording_file(tmp_path)
    )

    assert supabase_stub.requests_to("POST", "/bucket") == []
    assert (bucket, path) in supabase_stub.objects


async def test_supabase_signing_a_missing_object_is_not_found(supabase_stub: SupabaseStorageStub) -> None:
    bucket = f"rec-{uuid.uuid4().hex[:8]}"
    supabase_stub.add_bucket(bucket, public=False)

    with pytest.raises(storage.RecordingNotFound):
        await storage.signed_recording_url(
            supabase_settings(supabase_stub, bucket),
            f"calls/2026/11/21/{uuid.uuid4()}.ogg",
            public_base_url="",
        )


async def test_supabase_public_bucket_is_refused(supabase_stub: SupabaseStorageStub, tmp_path: Path) -> None:
    bucket = f"rec-{uuid.uuid4().hex[:8]}"
    supabase_stub.add_bucket(bucket, public=True)

    with pytest.raises(StorageError, match="public"):
        await upload_recording(
            supabase_settings(supabase_stub, bucket), uuid.uuid4(), recording_file(tmp_path)
        )
    assert supabase_stub.objects == {}


async def test_supabase_wrong_key_is_a_storage_error(
    supabase_stub: SupabaseStorageStub, tmp_path: Path
) -> None:
    bad = supabase_settings(supabase_stub, f"rec-{uuid.uuid4().hex[:8]}").model_copy(
        update={"supabase_service_role_key": SecretStr("not-the-key")}
    )
    with pytest.raises(StorageError, match="Invalid JWT"):
        await upload_recording(bad, uuid.uuid4(), recording_file(tmp_path))
    assert supabase_stub.objects == {}


async def test_supabase_unreachable_is_a_storage_error(tmp_path: Path) -> None:
    stub = SupabaseStorageStub(SERVICE_ROLE_KEY)
    settings = supabase_settings(stub, f"rec-{uuid.uuid4().hex[:8]}")
    stub.close()

    with pytest.raises(StorageError, match="unreachable"):
        await upload_recording(settings, uuid.uuid4(), recording_file(tmp_path))
