"""The `voicedesk` command: development stack, database chores, the knowledge base and phone calls."""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicedesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole stack locally until Ctrl+C")
    db = commands.add_parser("db", help="database chores").add_subparsers(dest="db_command", required=True)
    db.add_parser("migrate", help="apply supabase/migrations to DATABASE_URL (or the embedded server)")
    db.add_parser("seed", help="load supabase/seed.sql (demo data)")

    kb = commands.add_parser("kb", help="knowledge base: ingest, list, remove, search").add_subparsers(
        dest="kb_command", required=True
    )
    ingest = kb.add_parser(
        "ingest",
        help="ingest Markdown, text, HTML and PDF files or folders (unchanged files are skipped)",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (walked recursively)")
    ingest.add_argument(
        "--reembed",
        action="store_true",
        help="delete every stored document, adopt the configured EMBEDDING_* model and ingest PATHs "
        "afresh (needed after changing the embedding model or dimensions)",
    )
    ingest.add_argument(
        "--tiers",
        default="",
        metavar="T[,T]",
        help="subscription tiers (basic, pro, enterprise) for files that do not declare their own "
        "(Markdown front matter `tiers:`, HTML <meta name=tiers>); default: visible to everyone",
    )
    remove = kb.add_parser("remove", help="remove documents by source (as `kb list` shows them)")
    remove.add_argument("sources", nargs="*", metavar="SOURCE")
    remove.add_argument("--all", action="store_true", dest="remove_all", help="remove every document")
    kb.add_parser("list", help="list stored documents, their tiers and chunk counts")
    search = kb.add_parser("search", help="hybrid search, as the agent does it")
    search.add_argument("query", metavar="QUERY")
    search.add_argument(
        "--tier",
        choices=("basic", "pro", "enterprise"),
        default=None,
        help="search as a caller of this tier (default: an unidentified caller, public documents only)",
    )
    search.add_argument("--limit", type=int, default=None, help="passages to show (default KB_SEARCH_LIMIT)")

    sip = commands.add_parser("sip", help="phone calls: LiveKit SIP trunks and dispatch rule").add_subparsers(
        dest="sip_command", required=True
    )
    sip.add_parser(
        "setup",
        help="create or update the inbound trunk, dispatch rule and outbound trunk from SIP_* settings "
        "(safe to re-run: unchanged objects are left alone)",
    )
    sip.add_parser("status", help="list the SIP trunks and dispatch rules on LIVEKIT_URL")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its start-up chatter is not news

    if args.command == "dev":
        from voicedesk.dev_stack import run

        run()
        return

    from voicedesk.config import load_settings

    if args.command == "sip":
        from telephony import provisioning
        from telephony.settings import LiveKitApiSettings, TelephonySettings

        if args.sip_command == "setup":
            settings = load_settings(TelephonySettings)
            code = provisioning.run("sip setup", lambda lk: provisioning.setup(lk, settings), settings)
        else:
            code = provisioning.run("sip status", provisioning.status, load_settings(LiveKitApiSettings))
        sys.exit(code)

    from db.embedded import resolve_database_url
    from db.settings import DatabaseSettings

    url = resolve_database_url(load_settings(DatabaseSettings))
    if args.command == "kb":
        from knowledge import commands

        if args.kb_command == "ingest":
            code = commands.ingest(url, args.paths, reembed=args.reembed, tiers=args.tiers)
        elif args.kb_command == "remove":
            code = commands.remove(url, args.sources, remove_everything=args.remove_all)
        elif args.kb_command == "list":
            code = commands.list_documents(url)
        else:
            code = commands.search(url, args.query, tier=args.tier, limit=args.limit)
        sys.exit(code)

    from db.migrations import apply_migrations, apply_seed

    if args.db_command == "migrate":
        applied = apply_migrations(url)
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    else:
        apply_seed(url)
        print("demo data loaded")
