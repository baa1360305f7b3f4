"""Firebase ID-token authentication, as a FastAPI dependency.

The token server trusts nothing a client says about who it is: the caller's identity is the uid
in a Firebase ID token that firebase-admin has verified for ``FIREBASE_PROJECT_ID``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import firebase_admin
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from firebase_admin import _token_gen, auth, credentials
from google.auth.credentials import AnonymousCredentials
from starlette.concurrency import run_in_threadpool

from token_server.settings import TokenServerSettings

log = logging.getLogger(__name__)

FIREBASE_APP_NAME = "voicedesk-token-server"
MAX_TOKEN_CHARS = 8192  # Firebase ID tokens are ~1 KB; anything far larger is not one.
# Tolerated clock difference with Google's token servers, so a fresh token is not "used too early".
CLOCK_SKEW_SECONDS = 5

# Claims every Firebase ID token carries; whatever else is in a token is a custom claim.
_STANDARD_CLAIMS = frozenset(
    {
        "iss",
        "aud",
        "auth_time",
        "user_id",
        "sub",
        "iat",
        "exp",
        "email",
        "email_verified",
        "phone_number",
        "name",
        "picture",
        "firebase",
        "uid",
        "nbf",
        "jti",
    }
)


@dataclass(frozen=True)
class FirebaseUser:
    """The verified caller: uid plus the profile claims the token carried."""

    uid: str
    email: str | None = None
    name: str | None = None
    phone_number: str | None = None
    custom_claims: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict, repr=False)


class _VerifyOnlyCredential(credentials.Base):
    """A credential that cannot call Google APIs: verifying ID tokens needs only public certs."""

    def get_credential(self) -> AnonymousCredentials:
        return AnonymousCredentials()


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


class FirebaseTokenVerifier:
    """Owns the firebase-admin app (initialised once) and turns ID tokens into a FirebaseUser."""

    def __init__(self, settings: TokenServerSettings) -> None:
        if settings.firebase_auth_emulator_host:
            # firebase-admin reads the emulator switch from the process environment only; the
            # value may have come from .env, so export it (settings allow it only in dev/test).
            os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = settings.firebase_auth_emulator_host
        if settings.firebase_id_token_certs_url is not None:
            # Test/dev only (settings refuse it otherwise): firebase-admin pins Google's ID-token
            # certificate URL in this module constant, which TokenVerifier reads when the auth
            # client is created. Pointing it at a local server lets tests exercise real RS256
            # signature and expiry checking with a key pair they generate.
            _token_gen.ID_TOKEN_CERT_URI = str(settings.firebase_id_token_certs_url)
        self._app = self._firebase_app(settings)

    @staticmethod
    def _firebase_app(settings: TokenServerSettings) -> firebase_admin.App:
        try:
            app = firebase_admin.get_app(FIREBASE_APP_NAME)
        except ValueError:
            pass
        else:
            if app.project_id != settings.firebase_project_id:
                raise RuntimeError(f"firebase app already initialised for project {app.project_id}")
            return app
        cred: credentials.Base
        if settings.google_application_credentials is not None:
            cred = credentials.Certificate(str(settings.google_application_credentials))
        else:
            cred = _VerifyOnlyCredential()
        return firebase_admin.initialize_app(
            cred, {"projectId": settings.firebase_project_id}, name=FIREBASE_APP_NAME
        )

    def verify(self, id_token: str) -> FirebaseUser:
        """Verify ``id_token`` (blocking: may fetch certificates) or raise HTTPException."""
        try:
            claims = auth.verify_id_token(id_token, app=self._app, clock_skew_seconds=CLOCK_SKEW_SECONDS)
        except auth.CertificateFetchError as exc:
            log.warning("cannot fetch Firebase certificates: %s", exc)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "cannot verify sign-in right now (certificates unavailable); retry shortly",
                headers={"Retry-After": "5"},
            ) from None
        except auth.ExpiredIdTokenError:
            raise _unauthorized("Firebase ID token has expired; refresh it and retry") from None
        except (auth.InvalidIdTokenError, ValueError, TypeError) as exc:
            # TypeError: google-auth trips over some malformed claim types (e.g. a string exp).
            log.info("rejected Firebase ID token: %s", exc)
            raise _unauthorized("invalid Firebase ID token") from None
        # With the emulator firebase-admin skips the expiry check (see _token_gen.verify);
        # enforcing it here costs nothing and also guards production.
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise _unauthorized("invalid Firebase ID token (no exp)")
        if exp + CLOCK_SKEW_SECONDS <= time.time():
            raise _unauthorized("Firebase ID token has expired; refresh it and retry")
        uid = claims.get("uid") or claims.get("sub")
        if not isinstance(uid, str) or not uid:
            raise _unauthorized("invalid Firebase ID token (no subject)")
        return FirebaseUser(
            uid=uid,
            email=_str_claim(claims, "email"),
            name=_str_claim(claims, "name"),
            phone_number=_str_claim(claims, "phone_number"),
            custom_claims={k: v for k, v in claims.items() if k not in _STANDARD_CLAIMS},
            claims=dict(claims),
        )


def _str_claim(claims: dict[str, Any], key: str) -> str | None:
    value = claims.get(key)
    return value if isinstance(value, str) and value else None


_bearer = HTTPBearer(auto_error=False, description="Firebase ID token")


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> FirebaseUser:
    """Dependency: the verified Firebase user, or 401 with ``WWW-Authenticate: Bearer``."""
    if credentials is None:
        raise _unauthorized("sign in first: send Authorization: Bearer <Firebase ID token>")
    token = credentials.credentials.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise _unauthorized("invalid Firebase ID token")
    verifier: FirebaseTokenVerifier = request.app.state.firebase
    # verify_id_token blocks (certificate fetch, RSA): keep it off the event loop.
    return await run_in_threadpool(verifier.verify, token)


CurrentUser = Annotated[FirebaseUser, Depends(current_user)]
