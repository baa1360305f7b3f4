"""Database configuration, shared by both services."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(
        default=None,
        description="Postgres connection URL (Supabase: the direct or session-pooler URL). "
        "Unset: an embedded Postgres with pgvector is started for development.",
        examples=["postgresql://postgres:secret@db.abcd.supabase.co:5432/postgres"],
    )
    pgserver_data_dir: Path = Field(
        default=Path("/var/tmp/voicedesk/pgdata"),
        description="Data directory of the embedded development Postgres (used when DATABASE_URL is unset).",
        examples=["/var/tmp/voicedesk/pgdata"],
    )
    db_pool_max_size: int = Field(
        default=10, ge=1, description="Maximum connections per process.", examples=[10]
    )
