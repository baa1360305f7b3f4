"""The browser app's side of the token server: `GET /config` and the built app served at `/`.

Two real servers: ``token_server`` (Auth emulator, a miniature built app in WEB_DIST_DIR) and
``strict_token_server`` (real Firebase verification, production-like web settings, no built app).
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import (
    STRICT_AUTH_DOMAIN,
    STRICT_WEB_API_KEY,
    WEB_APP_JS,
    WEB_INDEX_HTML,
)
from tests.support.firebase_emulator import PROJECT_ID, FirebaseAuthEmulator
from tests.support.token_server import TokenServer
from token_server.settings import DEFAULT_VOICE_CHOICES


def _csp(resp: httpx.Response) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in resp.headers["content-security-policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


# --- GET /config -------------------------------------------------------------------------------------


def test_config_is_public_and_names_the_emulator(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    resp = httpx.get(f"{token_server.url}/config", timeout=10)  # no Authorization header

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    cache = resp.headers["cache-control"]
    assert cache.startswith("public, max-age=") and 0 < int(cache.rsplit("=", 1)[1]) <= 300
    assert resp.json() == {
        "firebase": {
            "apiKey": "demo-api-key",  # the emulator accepts any key
            "authDomain": f"{PROJECT_ID}.firebaseapp.com",
            "projectId": PROJECT_ID,
        },
        "authEmulatorUrl": f"http://{firebase_emulator.host}",
        "googleSignIn": False,
        "voices": [{"id": v.id, "name": v.name} for v in DEFAULT_VOICE_CHOICES],
    }


def test_config_without_the_emulator_has_no_emulator_url(strict_token_server: TokenServer) -> None:
    body = httpx.get(f"{strict_token_server.url}/config", timeout=10).json()

    assert body["authEmulatorUrl"] is None
    assert body["firebase"] == {
        "apiKey": STRICT_WEB_API_KEY,
        "authDomain": STRICT_AUTH_DOMAIN,
        "projectId": PROJECT_ID,
    }
    assert body["googleSignIn"] is True


def test_config_is_in_the_openapi_schema(token_server: TokenServer) -> None:
    schema = httpx.get(f"{token_server.url}/openapi.json", timeout=10).json()
    assert "get" in schema["paths"]["/config"]
    assert "post" in schema["paths"]["/calls/{call_id}/monitor"]


# --- the browser app ---------------------------------------------------------------------------------


def test_index_is_served_at_root_with_security_headers(
    token_server: TokenServer, firebase_emulator: FirebaseAuthEmulator
) -> None:
    resp = httpx.get(f"{token_server.url}/", timeout=10)

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.text == WEB_INDEX_HTML
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-cache"

    csp = _csp(resp)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no inline scripts, no Google scripts without Google sign-in
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    livekit = token_server.env["LIVEKIT_URL"]  # ws://127.0.0.1:<port>
    connect = csp["connect-src"]
    assert "'self'" in connect
    assert livekit in connect and livekit.replace("ws://", "http://", 1) in connect
    assert "https://identitytoolkit.googleapis.com" in connect
    assert "https://securetoken.googleapis.com" in connect
    assert f"http://{firebase_emulator.host}" in connect


def test_assets_are_served_beside_index(token_server: TokenServer) -> None:
    resp = httpx.get(f"{token_server.url}/assets/app.js", timeout=10)

    assert resp.status_code == 200
    assert resp.text == WEB_APP_JS
    assert "javascript" in resp.headers["content-type"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in resp.headers  # HTML only


def test_api_routes_win_over_the_app(token_server: TokenServer) -> None:
    assert httpx.get(f"{token_server.url}/healthz", timeout=10).json() == {"status": "ok"}
    # A known API path with the wrong method is still the API's 405, not a missing file.
    resp = httpx.get(f"{token_server.url}/token", timeout=10)
    assert resp.status_code == 405
    assert "POST" in resp.headers["allow"]
    assert httpx.get(f"{token_server.url}/no-such-page", timeout=10).status_code == 404
    assert httpx.get(f"{token_server.url}/..%2f..%2fetc%2fpasswd", timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/", "/index.html", "/assets/app.js"])
def test_app_not_built_is_a_503_saying_how_to_build_it(strict_token_server: TokenServer, path: str) -> None:
    resp = httpx.get(f"{strict_token_server.url}{path}", timeout=10)

    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("text/plain")
    assert "make web" in resp.text
    assert "WEB_DIST_DIR" in resp.text
    assert resp.headers["cache-control"] == "no-store"
    # The API is unaffected.
    assert httpx.get(f"{strict_token_server.url}/healthz", timeout=10).status_code == 200
