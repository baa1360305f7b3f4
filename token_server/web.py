"""Serve the built browser app (``WEB_DIST_DIR``) at ``/``, behind the API routes.

The app is mounted last and only answers paths no API route knows (so ``GET /token`` is still a
405, not a missing file). HTML pages carry a Content-Security-Policy that allows this origin, the
LiveKit server and the Firebase Auth endpoints and nothing else. While the directory does not
exist (the app was not built), every page is a 503 saying how to build it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from token_server.settings import TokenServerSettings

REFERRER_POLICY = "strict-origin-when-cross-origin"  # Firebase key restrictions read the origin
FIREBASE_AUTH_APIS = ("https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com")
GOOGLE_SIGN_IN_SCRIPTS = "https://apis.google.com"  # loaded by firebase/auth for popup sign-in


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _livekit_origins(livekit_url: str) -> list[str]:
    """The LiveKit server over WebSocket (signalling) and HTTP(S) (connection checks, regions)."""
    parts = urlsplit(livekit_url)
    secure = parts.scheme in ("wss", "https")
    return [
        f"{'wss' if secure else 'ws'}://{parts.netloc}",
        f"{'https' if secure else 'http'}://{parts.netloc}",
    ]


def content_security_policy(settings: TokenServerSettings, *, recordings_url: str | None = None) -> str:
    """The CSP of the app's HTML: this origin, LiveKit, Firebase Auth (or its emulator), recordings.

    ``recordings_url`` is where signed recording URLs point when not at PUBLIC_BASE_URL (Supabase).
    """
    connect = ["'self'", *_livekit_origins(settings.livekit_url), *FIREBASE_AUTH_APIS]
    scripts = ["'self'"]
    frames = ["'self'"]
    if settings.auth_emulator_url:
        connect.append(settings.auth_emulator_url)
        frames.append(settings.auth_emulator_url)
    if settings.google_sign_in_enabled:
        scripts.append(GOOGLE_SIGN_IN_SCRIPTS)
        frames.append(f"https://{settings.firebase_auth_domain}")
    media = ["'self'", "blob:", _origin(settings.public_base_url)]
    if recordings_url:
        media.append(_origin(recordings_url))
    directives = {
        "default-src": ["'self'"],
        "script-src": scripts,
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": connect,
        "media-src": media,
        "worker-src": ["'self'", "blob:"],
        "frame-src": frames,
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(dict.fromkeys(values))}" for name, values in directives.items())


def not_built_message(directory: Path) -> str:
    return (
        f"The voicedesk browser app is not built: {directory} does not exist.\n"
        "Run `make web` to build it (or set WEB_DIST_DIR to a built copy), then reload.\n"
        "The API (POST /token, /me/settings, /calls, ...) works without it.\n"
    )


class WebApp:
    """ASGI app: files of ``directory`` (``index.html`` for ``/``) with security headers, or a 503."""

    def __init__(self, directory: Path, csp: str) -> None:
        self.directory = directory
        self.csp = csp
        # check_dir=False: a missing directory is a 503 per request, not a start-up failure, so
        # building the app while the server runs needs no restart.
        self._files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.directory.is_dir():
            response = PlainTextResponse(
                not_built_message(self.directory),
                status_code=503,
                headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = REFERRER_POLICY
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = self.csp
                    headers["X-Frame-Options"] = "DENY"
                    headers["Cache-Control"] = "no-cache"  # revalidate: a new build shows at once
            await send(message)

        await self._files(scope, receive, send_with_headers)


class FallbackMount(Mount):
    """A mount the router uses only when no route matches the path, even by path alone.

    Starlette lets a full match win at once, so a plain mount at ``/`` would turn ``GET /token``
    (a route, wrong method) into a missing file. Reporting a partial match instead puts the mount
    behind every route that knows the path: those still answer 405 as before.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        return (Match.PARTIAL if match is Match.FULL else match), child_scope


def web_app_mount(settings: TokenServerSettings, *, recordings_url: str | None = None) -> FallbackMount:
    """The browser app, to be added after every API route."""
    app = WebApp(settings.web_dist_dir, content_security_policy(settings, recordings_url=recordings_url))
    return FallbackMount("/", app=app, name="web")
