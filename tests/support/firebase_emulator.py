"""Firebase Auth for tests: the real Auth emulator (npm firebase-tools), and tokens to attack with.

The emulator issues unsigned ID tokens (``alg: none``), which firebase-admin accepts only in
emulator mode; :class:`SigningAuthority` signs tokens with a key pair of its own and serves the
matching certificates, so a token server in strict mode checks real RS256 signatures and expiry.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.processes import REPO_ROOT, Service, free_port, http_ok, start_service

PROJECT_ID = "demo-voicedesk"  # "demo-" projects never reach Google: the emulator enforces it
FIREBASE_BIN = REPO_ROOT / "node_modules" / ".bin" / "firebase"
ISSUER_PREFIX = "https://securetoken.google.com/"


@dataclass(frozen=True)
class SignedUpUser:
    uid: str
    email: str
    password: str
    id_token: str


@dataclass
class FirebaseAuthEmulator:
    service: Service
    port: int
    project_id: str = PROJECT_ID

    @property
    def host(self) -> str:
        """The value for ``FIREBASE_AUTH_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    def _post(self, path: str, body: dict[str, Any], *, admin: bool = False) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = "Bearer owner"  # the emulator's admin credential
        req = urllib.request.Request(
            f"http://{self.host}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def sign_up(
        self,
        email: str | None = None,
        password: str = "correct horse battery",
        display_name: str | None = None,
    ) -> SignedUpUser:
        """Create an email/password user through the client REST API; returns its ID token and uid."""
        email = email or f"user-{secrets.token_hex(6)}@example.com"
        body: dict[str, Any] = {"email": email, "password": password, "returnSecureToken": True}
        if display_name:
            body["displayName"] = display_name
        data = self._post("/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any", body)
        return SignedUpUser(uid=data["localId"], email=email, password=password, id_token=data["idToken"])

    def sign_in(self, email: str, password: str) -> str:
        """A fresh ID token (it carries custom claims set since sign-up)."""
        data = self._post(
            "/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return data["idToken"]

    def set_custom_claims(self, uid: str, claims: dict[str, Any]) -> None:
        """What ``auth.set_custom_user_claims`` does, through the emulator's admin REST API."""
        self._post(
            f"/identitytoolkit.googleapis.com/v1/projects/{self.project_id}/accounts:update",
            {"localId": uid, "customAttributes": json.dumps(claims)},
            admin=True,
        )

    def update_profile(
        self,
        uid: str,
        *,
        display_name: str | None = None,
        phone: str | None = None,
        email_verified: bool | None = None,
        disabled: bool | None = None,
    ) -> None:
        """What an admin's ``auth.update_user`` does."""
        fields = {
            "displayName": display_name,
            "phoneNumber": phone,
            "emailVerified": email_verified,
            "disableUser": disabled,
        }
        body: dict[str, Any] = {"localId": uid, **{k: v for k, v in fields.items() if v is not None}}
        path = f"/identitytoolkit.googleapis.com/v1/projects/{self.project_id}/accounts:update"
        self._post(path, body, admin=True)


def start_auth_emulator(work_dir: Path) -> FirebaseAuthEmulator:
    """Start ``firebase emulators:start --only auth`` with the repo's firebase.json on free ports.

    Everything the CLI writes (debug log, hub locator, config store) stays in ``work_dir``; update
    checks and prompts are off, so it never needs the network. Auth alone needs no Java.
    """
    if not FIREBASE_BIN.exists():
        raise RuntimeError(f"{FIREBASE_BIN} is missing: run `npm ci` in {REPO_ROOT}")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = json.loads((REPO_ROOT / "firebase.json").read_text())
    emulators = config["emulators"]
    emulators["auth"] = {"host": "127.0.0.1", "port": port}
    # The hub and logging emulators always start; give them free ports too so runs don't collide.
    emulators["hub"] = {"host": "127.0.0.1", "port": free_port()}
    emulators["logging"] = {"host": "127.0.0.1", "port": free_port()}
    config_path = work_dir / "firebase.json"
    config_path.write_text(json.dumps(config, indent=2))
    (work_dir / "xdg").mkdir(exist_ok=True)
    env = {
        "CI": "true",  # never prompt
        "NO_UPDATE_NOTIFIER": "1",
        "XDG_CONFIG_HOME": str(work_dir / "xdg"),  # its configstore (no usage reporting opt-in)
        "TMPDIR": str(work_dir),  # the hub locator file, per run
    }
    argv = [
        str(FIREBASE_BIN),
        "emulators:start",
        "--only",
        "auth",
        "--project",
        PROJECT_ID,
        "--config",
        str(config_path),
    ]
    svc = start_service(
        "firebase-auth-emulator",
        argv,
        work_dir,
        env=env,
        cwd=work_dir,
        ready=http_ok(f"http://127.0.0.1:{port}/"),
        timeout=90,
    )
    return FirebaseAuthEmulator(svc, port)


# --- crafted tokens ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (to copy a real token's claims into a crafted one)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def unsigned_token(claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWT, shaped like the emulator's own tokens."""
    header = {"alg": "none", "typ": "JWT"}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def tampered(token: str, **changes: Any) -> str:
    """``token``'s claims with ``changes`` applied, re-encoded unsigned."""
    return unsigned_token({**decode_claims(token), **changes})


def firebase_claims(
    uid: str, project_id: str = PROJECT_ID, *, lifetime: int = 3600, **extra: Any
) -> dict[str, Any]:
    """Claims of a Firebase ID token for ``uid`` issued now."""
    now = int(time.time())
    return {
        "iss": ISSUER_PREFIX + project_id,
        "aud": project_id,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + lifetime,
        "firebase": {"identities": {}, "sign_in_provider": "password"},
        **extra,
    }


class SigningAuthority:
    """Plays Google's part: an RSA key whose certificate a tiny local HTTP server publishes.

    The token server's test-only ``FIREBASE_ID_TOKEN_CERTS_URL`` points at :attr:`certs_url`.
    """

    def __init__(self, *, max_age: int | None = None) -> None:
        """``max_age``: let clients cache the certificates that long, as Google's allow."""
        self.kid = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.available = True  # False: the certificate endpoint answers 503, like an outage
        certs = json.dumps({self.kid: self._certificate(self._key)}).encode()
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not authority.available:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                # By default not cacheable, so an outage is seen at once (Google's certs are
                # cached for hours).
                cache = f"public, max-age={max_age}" if max_age else "no-store"
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(certs)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _certificate(key: rsa.RSAPrivateKey) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voicedesk-test-securetoken")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def certs_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/certs"

    def sign(
        self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None
    ) -> str:
        """An RS256 token with our ``kid``; pass another ``key`` to forge one."""
        return jwt.encode(claims, key or self._key, algorithm="RS256", headers={"kid": kid or self.kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def forged_key() -> rsa.RSAPrivateKey:
    """A key nobody published a certificate for."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
