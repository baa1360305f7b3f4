"""Who may use the operator API: Firebase users carrying the custom claim ``operator: true``.

Operators are made with firebase-admin's ``auth.set_custom_user_claims(uid, {"operator": True})``;
the claim arrives in the user's next ID token, so no role table has to be kept in sync.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, status

from token_server.auth import CurrentUser, FirebaseUser

log = logging.getLogger(__name__)

OPERATOR_CLAIM = "operator"


async def require_operator(user: CurrentUser) -> FirebaseUser:
    """Dependency: the signed-in operator; 401 without a valid token (from CurrentUser), else 403."""
    if user.custom_claims.get(OPERATOR_CLAIM) is not True:
        log.info("refused operator API to non-operator uid=%s", user.uid)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "operators only: this account has no operator role (custom claim operator=true); "
            "if it was just granted, sign in again to refresh the ID token",
        )
    return user


Operator = Annotated[FirebaseUser, Depends(require_operator)]
