"""``python -m token_server``: validate configuration, then serve the app with uvicorn.

Settings are checked here, before uvicorn starts, so a bad variable stops the process with a
readable message (exit status 2) instead of a traceback inside a worker.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from db.embedded import resolve_database_url
from db.settings import DatabaseSettings
from token_server.settings import TokenServerSettings
from voicedesk.config import load_settings
from voicedesk.logging_setup import token_server_log_config


def _log_config(settings: TokenServerSettings) -> dict[str, Any]:
    """JSON lines in production, readable lines otherwise; PII redacted, request id on each line."""
    return token_server_log_config(json_logs=settings.app_env == "production")


def main() -> None:
    settings = load_settings(TokenServerSettings)
    db_settings = load_settings(DatabaseSettings)
    # Start (or attach to) the embedded dev database once, before workers start, and export its
    # URL so every worker uses the same server. A no-op when DATABASE_URL is set.
    resolve_database_url(db_settings)
    uvicorn.run(
        "token_server.app:app_factory",
        factory=True,
        host=settings.token_server_host,
        port=settings.token_server_port,
        workers=settings.token_server_workers,
        log_config=_log_config(settings),
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
