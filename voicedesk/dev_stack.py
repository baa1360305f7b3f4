"""`make dev`: every component on loopback, one terminal, Ctrl+C stops them all.

Provider keys found in the environment or `.env` are used for real. A provider whose key is
missing is served by the local provider emulator, so the stack works end to end without keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from db.embedded import resolve_database_url, stop_embedded
from db.migrations import apply_migrations, apply_seed
from db.settings import DatabaseSettings
from voicedesk.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".data" / "logs"
LIVEKIT_URL = "ws://127.0.0.1:7880"
LIVEKIT_KEY, LIVEKIT_SECRET = "devkey", "voicedesk-dev-secret-change-me-0123456789"
AUTH_EMULATOR = "127.0.0.1:9099"
EMULATOR_PORT = 8790
TOKEN_SERVER = "http://127.0.0.1:8000"

# provider -> (key variables, any of which will do; variables the emulator sets)
PROVIDERS = {
    "OpenAI (LLM)": (
        ("OPENAI_API_KEY",),
        {"OPENAI_API_KEY": "emulator", "OPENAI_BASE_URL": f"http://127.0.0.1:{EMULATOR_PORT}/v1"},
    ),
    "Deepgram (STT)": (
        ("DEEPGRAM_API_KEY",),
        {"DEEPGRAM_API_KEY": "emulator", "DEEPGRAM_BASE_URL": f"http://127.0.0.1:{EMULATOR_PORT}/v1/listen"},
    ),
    "ElevenLabs (TTS)": (
        ("ELEVENLABS_API_KEY", "ELEVEN_API_KEY"),
        {"ELEVENLABS_API_KEY": "emulator", "ELEVENLABS_BASE_URL": f"http://127.0.0.1:{EMULATOR_PORT}/v1"},
    ),
}


@dataclass
class Running:
    name: str
    where: str
    proc: subprocess.Popen[bytes]


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}; see {LOG_DIR / name}.log")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{name} did not answer on {url} within {timeout:.0f}s; see {LOG_DIR / name}.log")


def _start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(LOG_DIR / f"{name}.log", "ab")
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def run() -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None} | dict(os.environ)
    env.update(
        APP_ENV="dev",
        LIVEKIT_URL=LIVEKIT_URL,
        LIVEKIT_API_KEY=LIVEKIT_KEY,
        LIVEKIT_API_SECRET=LIVEKIT_SECRET,
        FIREBASE_AUTH_EMULATOR_HOST=AUTH_EMULATOR,
        FIREBASE_PROJECT_ID="demo-voicedesk",
        CORS_ALLOWED_ORIGINS=env.get("CORS_ALLOWED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000"),
        PYTHONUNBUFFERED="1",
    )
    # Capacity by call count, not CPU: a busy laptop must not turn callers away in development.
    env.setdefault("WORKER_MAX_CALLS", "4")
    running: list[Running] = []
    db_settings = load_settings(
        DatabaseSettings, **({"database_url": env["DATABASE_URL"]} if env.get("DATABASE_URL") else {})
    )
    embedded = not db_settings.database_url

    def stop_all(*_: object) -> None:
        print("\nstopping ...")
        for r in reversed(running):
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, signal.SIGTERM)
        for r in reversed(running):
            try:
                r.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(r.proc.pid, signal.SIGKILL)
        if embedded:
            stop_embedded(db_settings.pgserver_data_dir)
        print("stopped.")
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    env["DATABASE_URL"] = database_url = resolve_database_url(db_settings)
    applied = apply_migrations(database_url)
    apply_seed(database_url)
    db_where = f"embedded, data in {db_settings.pgserver_data_dir}" if embedded else "DATABASE_URL"

    lk = _start("livekit-server", [_which("livekit-server"), "--config", "livekit.yaml"], env)
    running.append(Running("LiveKit server", LIVEKIT_URL, lk))
    _wait_http("http://127.0.0.1:7880/", lk, "livekit-server")

    auth = _start(
        "auth-emulator",
        [_which("firebase"), "emulators:start", "--only", "auth", "--project", "demo-voicedesk"],
        env,
    )
    running.append(Running("Firebase Auth emulator", f"http://{AUTH_EMULATOR}", auth))
    _wait_http(f"http://{AUTH_EMULATOR}/", auth, "auth-emulator", timeout=90)

    emulated = []
    for provider, (keys, emulator_env) in PROVIDERS.items():
        if not any(env.get(k) for k in keys):
            emulated.append((provider, " or ".join(keys)))
            env.update(emulator_env)
    if not env.get("EMBEDDING_PROVIDER") and any(k == "OPENAI_API_KEY" for _, k in emulated):
        env["EMBEDDING_PROVIDER"] = "local"  # real semantic search offline, no key needed
    if emulated:
        emu = _start(
            "provider-emulators", [sys.executable, "-m", "tests.emulators", "--port", str(EMULATOR_PORT)], env
        )
        running.append(Running("Provider emulators", f"http://127.0.0.1:{EMULATOR_PORT}", emu))
        _wait_http(f"http://127.0.0.1:{EMULATOR_PORT}/_emulator/health", emu, "provider-emulators")

    with open(LOG_DIR / "kb-ingest.log", "wb") as kb_log:
        ingest = subprocess.run(
            [sys.executable, "-m", "voicedesk", "kb", "ingest", "kb/demo"],
            cwd=ROOT,
            env=env,
            stdout=kb_log,
            stderr=kb_log,
        )
    if ingest.returncode != 0:
        print(f"warning: ingesting kb/demo failed; see {LOG_DIR / 'kb-ingest.log'}")

    ts = _start("token-server", [sys.executable, "-m", "token_server"], env)
    running.append(Running("Token server", TOKEN_SERVER, ts))
    _wait_http(f"{TOKEN_SERVER}/healthz", ts, "token-server")

    worker = _start("agent", [sys.executable, "-m", "agent", "dev"], env)
    running.append(Running("Agent worker", f"agent_name={env.get('AGENT_NAME', 'voicedesk')}", worker))

    print("\nvoicedesk dev stack is running:")
    print(f"  {'Postgres + pgvector':<24} {db_where} ({len(applied)} new migration(s), demo profile seeded)")
    print(f"  {'Knowledge base':<24} kb/demo ingested, {env.get('EMBEDDING_PROVIDER', 'openai')} embeddings")
    for r in running:
        print(f"  {r.name:<24} {r.where}")
    for provider, keys in emulated:
        print(f"  missing {keys}: {provider} is served by the local provider emulator")
    print(f"\nlogs: {LOG_DIR}/   Ctrl+C stops everything.\n")

    while True:
        for r in running:
            if r.proc.poll() is not None:
                print(f"{r.name} exited with {r.proc.returncode}; see {LOG_DIR}/")
                stop_all()
        time.sleep(1)


def _which(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        sys.exit(f"{binary} not found on PATH: run `make dev`, which installs it")
    return path
