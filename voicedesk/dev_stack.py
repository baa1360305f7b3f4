"""`make dev`: every component on loopback, one terminal, Ctrl+C stops them all.

Provider keys found in the environment or `.env` are used for real. A provider whose key is
missing is served by the local provider emulator, so the stack works end to end without keys.
Redis and livekit-sip run too, and the SIP trunk and dispatch rule are provisioned as
`voicedesk sip setup` does it, so a softphone on this machine can phone the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from db.embedded import resolve_database_url, stop_embedded
from db.migrations import apply_migrations, apply_seed
from db.settings import DatabaseSettings
from telephony.settings import TelephonySettings
from voicedesk.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".data" / "logs"
LIVEKIT_URL = "ws://127.0.0.1:7880"
LIVEKIT_KEY, LIVEKIT_SECRET = "devkey", "voicedesk-dev-secret-change-me-0123456789"
AUTH_EMULATOR = "127.0.0.1:9099"
EMULATOR_PORT = 8790
TOKEN_SERVER = "http://127.0.0.1:8000"
REDIS_PORT = 6379  # livekit.yaml and sip.yaml point here
SIP_PORT, SIP_RTP_PORTS = 5060, "10000-10100"  # as in sip.yaml
# Without SIP_* settings, dev provisions a fake number that only this machine may call.
DEV_INBOUND_NUMBER = "+15550100"
DEV_ALLOWED_ADDRESS = "127.0.0.1/32"

# The fixed ports the stack listens on (127.0.0.1), checked before anything starts: a port held
# by another process would make a component fail, or worse, another server answer in its place.
PORTS = [
    (REDIS_PORT, "tcp", "Redis"),
    (7880, "tcp", "LiveKit server"),
    (7881, "tcp", "LiveKit server (RTC over TCP)"),
    (7882, "udp", "LiveKit server (RTC over UDP)"),
    (SIP_PORT, "udp", "livekit-sip"),
    (SIP_PORT, "tcp", "livekit-sip"),
    (9099, "tcp", "Firebase Auth emulator"),
    (8000, "tcp", "token server"),
]

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
    # livekit-sip waits for calls to end on SIGTERM; SIGINT hangs them up and exits.
    stop_signal: signal.Signals = signal.SIGTERM


def _wait(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], name: str, what: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}; see {LOG_DIR / name}.log")
        if ready():
            return
        time.sleep(0.2)
    sys.exit(f"{name} did not {what} within {timeout:.0f}s; see {LOG_DIR / name}.log")


def _wait_http(url: str, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    _wait(answers, proc, name, f"answer on {url}", timeout)


def redis_answers(port: int = REDIS_PORT) -> bool:
    """Ready means Redis answers a command, not merely that its port accepts connections."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _sip_ready() -> bool:
    """livekit-sip logs "service ready" only at debug level; its SIP port accepting TCP will do
    (the port was free before it started, so nobody else answers there)."""
    try:
        with socket.create_connection(("127.0.0.1", SIP_PORT), timeout=1):
            return True
    except OSError:
        return False


def _busy_ports(ports: list[tuple[int, str, str]]) -> list[str]:
    """The ports of ``ports`` that some other process holds on 127.0.0.1."""
    busy = []
    for port, proto, who in ports:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as servers do: TIME_WAIT leftovers are no conflict
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port}/{proto} ({who})")
    return busy


def _telephony_settings(env: dict[str, str]) -> TelephonySettings:
    """SIP_* settings from the environment and `.env`, with dev defaults for what is unset."""
    values = {name: env[name.upper()] for name in TelephonySettings.model_fields if env.get(name.upper())}
    values.setdefault("sip_inbound_numbers", DEV_INBOUND_NUMBER)
    if "sip_inbound_allowed_addresses" not in values and "sip_inbound_username" not in values:
        values["sip_inbound_allowed_addresses"] = DEV_ALLOWED_ADDRESS
    # `env` already holds `.env` merged with the environment, wherever `voicedesk dev` runs from.
    return load_settings(TelephonySettings, _env_file=None, **values)


def _provision_sip(settings: TelephonySettings) -> list[str]:
    """What `voicedesk sip setup` does, against the dev LiveKit server; its lines, or a warning."""
    import aiohttp
    from livekit import api

    from telephony import provisioning

    async def setup() -> list[str]:
        secret = settings.livekit_api_secret.get_secret_value()
        lk = api.LiveKitAPI(settings.livekit_url, settings.livekit_api_key, secret)
        try:
            return await provisioning.setup(lk, settings)
        finally:
            await lk.aclose()

    try:
        return asyncio.run(setup())
    except (api.ServerError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        # Web calls still work: say so rather than stop the stack.
        reason = getattr(exc, "message", "") or str(exc) or type(exc).__name__
        return [f"warning: SIP provisioning failed ({reason}); phone calls will not reach the agent"]


def _how_to_call(settings: TelephonySettings) -> list[str]:
    number = settings.sip_inbound_numbers[0]
    lines = [
        f"call in from a softphone on this machine, e.g. baresip: dial sip:{number}@127.0.0.1:{SIP_PORT}"
    ]
    loopback = ipaddress.ip_address("127.0.0.1")
    allowed = [ipaddress.ip_network(a, strict=False) for a in settings.sip_inbound_allowed_addresses]
    if allowed and not any(loopback in net for net in allowed):
        lines.append(
            "note: SIP_INBOUND_ALLOWED_ADDRESSES leaves out 127.0.0.1, so LiveKit refuses such calls"
        )
    elif allowed:
        lines[0] += " (calls from 127.0.0.1 are allowed)"
    if settings.sip_inbound_username:
        lines.append("the softphone must authenticate with SIP_INBOUND_USERNAME/SIP_INBOUND_PASSWORD")
    return lines


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
    # Dev mode keeps no job process warm: the first call would ring ~5 s while one starts.
    env.setdefault("WORKER_NUM_IDLE_PROCESSES", "1")
    # Everything else (CALL_POLICY_FILE included: unset admits every call) reaches the worker as set.
    db_settings = load_settings(
        DatabaseSettings, **({"database_url": env["DATABASE_URL"]} if env.get("DATABASE_URL") else {})
    )
    embedded = not db_settings.database_url
    telephony = _telephony_settings(env)  # a malformed SIP_* setting stops us before anything starts

    emulated = []
    for provider, (keys, emulator_env) in PROVIDERS.items():
        if not any(env.get(k) for k in keys):
            emulated.append((provider, " or ".join(keys)))
            env.update(emulator_env)
    if not env.get("EMBEDDING_PROVIDER") and any(k == "OPENAI_API_KEY" for _, k in emulated):
        env["EMBEDDING_PROVIDER"] = "local"  # real semantic search offline, no key needed

    ports = PORTS + ([(EMULATOR_PORT, "tcp", "provider emulators")] if emulated else [])
    if busy := _busy_ports(ports):
        sys.exit(
            "voicedesk dev: these ports on 127.0.0.1 are taken by other processes: "
            + ", ".join(busy)
            + "\n  (`ss -ltnup` shows which); stop them, then run `make dev` again"
        )

    running: list[Running] = []

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        env["DATABASE_URL"] = database_url = resolve_database_url(db_settings)
        applied = apply_migrations(database_url)
        apply_seed(database_url)
        db_where = f"embedded, data in {db_settings.pgserver_data_dir}" if embedded else "DATABASE_URL"

        argv = [_which("redis-server"), "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", ""]
        redis = _start("redis-server", argv, env)
        running.append(Running("Redis", f"127.0.0.1:{REDIS_PORT} (SIP state, not saved)", redis))
        _wait(redis_answers, redis, "redis-server", f"answer PING on 127.0.0.1:{REDIS_PORT}", timeout=30)

        lk = _start("livekit-server", [_which("livekit-server"), "--config", "livekit.yaml"], env)
        running.append(Running("LiveKit server", LIVEKIT_URL, lk))
        _wait_http("http://127.0.0.1:7880/", lk, "livekit-server")

        sip = _start("livekit-sip", [_which("livekit-sip"), "--config", "sip.yaml"], env)
        sip_where = f"sip:127.0.0.1:{SIP_PORT} (UDP, TCP), RTP {SIP_RTP_PORTS}"
        running.append(Running("livekit-sip", sip_where, sip, stop_signal=signal.SIGINT))
        _wait(_sip_ready, sip, "livekit-sip", f"listen on {SIP_PORT}/tcp", timeout=30)
        sip_lines = _provision_sip(telephony)

        auth = _start(
            "auth-emulator",
            [_which("firebase"), "emulators:start", "--only", "auth", "--project", "demo-voicedesk"],
            env,
        )
        running.append(Running("Firebase Auth emulator", f"http://{AUTH_EMULATOR}", auth))
        _wait_http(f"http://{AUTH_EMULATOR}/", auth, "auth-emulator", timeout=90)

        if emulated:
            emu = _start(
                "provider-emulators",
                [sys.executable, "-m", "tests.emulators", "--port", str(EMULATOR_PORT)],
                env,
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
        running.append(Running("Agent worker", f"agent_name={telephony.agent_name}", worker))

        print("\nvoicedesk dev stack is running:")
        print(
            f"  {'Postgres + pgvector':<24} {db_where} ({len(applied)} new migration(s), demo profile seeded)"
        )
        print(
            f"  {'Knowledge base':<24} kb/demo ingested, {env.get('EMBEDDING_PROVIDER', 'openai')} embeddings"
        )
        for r in running:
            print(f"  {r.name:<24} {r.where}")
        for provider, keys in emulated:
            print(f"  missing {keys}: {provider} is served by the local provider emulator")
        print("\nphone calls (as `voicedesk sip setup` does it, from SIP_* settings or dev defaults):")
        for line in [*sip_lines, *_how_to_call(telephony)]:
            print(f"  {line}")
        print(f"\nlogs: {LOG_DIR}/   Ctrl+C stops everything.\n", flush=True)

        while True:
            for r in running:
                if r.proc.poll() is not None:
                    sys.exit(f"{r.name} exited with {r.proc.returncode}; see {LOG_DIR}/")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # say why before the shutdown lines, not after them
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        raise
    finally:
        _stop(running, db_settings.pgserver_data_dir if embedded else None)


def _stop(running: list[Running], pg_data_dir: Path | None) -> None:
    """Stop what `run` started, newest first; a second Ctrl+C cannot cut this short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("\nstopping ...", flush=True)
    for r in reversed(running):
        if r.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, r.stop_signal)
    for r in reversed(running):
        try:
            r.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait()
    if pg_data_dir is not None:
        stop_embedded(pg_data_dir)
    print("stopped.", flush=True)


def _which(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        sys.exit(f"{binary} not found on PATH: run `make dev`, which installs it")
    return path
