"""The `voicedesk` command: development stack and database chores."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voicedesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole stack locally until Ctrl+C")
    db = commands.add_parser("db", help="database chores").add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help="apply supabase/migrations to DATABASE_URL (or the embedded server)")
    db.add_parser("seed", help="load supabase/seed.sql (demo data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its start-up chatter is not news

    if args.command == "dev":
        from voicedesk.dev_stack import run

        run()
        return

    from db.embedded import resolve_database_url
    from db.migrations import apply_migrations, apply_seed
    from db.settings import DatabaseSettings
    from voicedesk.config import load_settings

    url = resolve_database_url(load_settings(DatabaseSettings))
    if args.db_command == "migrate":
        applied = apply_migrations(url)
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    else:
        apply_seed(url)
        print("demo data loaded")
