"""``python -m token_server``: validate configuration, then serve the app with uvicorn.

Settings are checked here, before uvicorn starts, so a bad variable stops the process with a
readable message (exit status 2) instead of a traceback inside a worker.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from db.embedded import resolve_database_url
from db.settings import DatabaseSettings
from token_server.settings import TokenServerSettings
from voicedesk.config import load_settings


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus our own ``token_server`` loggers at INFO."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["token_server"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


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
        log_config=_log_config(),
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
