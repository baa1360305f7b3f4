"""`python -m agent dev|start|console`: LiveKit Agents' own CLI around voicedesk's worker."""

from livekit.agents import cli

from db.embedded import resolve_database_url
from db.settings import DatabaseSettings
from voicedesk.config import load_settings


def main() -> None:
    from agent.server import server  # validates the worker's settings first

    # Before the CLI starts job processes, so they inherit DATABASE_URL (embedded in dev).
    resolve_database_url(load_settings(DatabaseSettings))
    cli.run_app(server)


if __name__ == "__main__":
    main()
