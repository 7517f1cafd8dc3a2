"""Command line of the tip-line bot.

Usage:
    python -m bot sandbox          # offline demo: local Bot API sandbox + web chat page
    python -m bot run              # real Telegram if TIPLINE_TELEGRAM_TOKEN is set, else sandbox
    python -m bot db upgrade       # apply migrations (also done at every start)
    python -m bot db current       # show the schema revision
    python -m bot check-config     # validate the settings and exit
    python -m bot qr 2998          # deep link + printable QR poster (PNG, PDF) of a commune
    python -m bot geo import communes.geojson   # commune boundaries for location routing
    python -m bot campaign add|list|status|pause|resume|cancel ...   # awareness campaigns
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (real Telegram with a token, else the sandbox)")
    sandbox = commands.add_parser("sandbox", help="run offline against the local Bot API sandbox")
    sandbox.add_argument("--port", type=int, help="port of the sandbox web chat page")
    sandbox.add_argument(
        "--no-rate-limits", action="store_true", help="the sandbox never answers 429"
    )
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply all migrations")
    down = db_commands.add_parser("downgrade", help="revert to a revision")
    down.add_argument("revision", help='e.g. "base" or "0001"')
    db_commands.add_parser("current", help="print the current revision")
    commands.add_parser("check-config", help="validate the settings and exit")
    qr = commands.add_parser("qr", help="print a commune's deep link and write its QR poster")
    qr.add_argument("commune_code", type=int, help="commune code, e.g. 2998")
    qr.add_argument("--out", type=Path, help="folder for the PNG and PDF (default data/posters)")
    qr.add_argument("--bot-username", help="overrides TIPLINE_BOT_USERNAME")
    geo = commands.add_parser("geo", help="commune boundaries")
    geo_commands = geo.add_subparsers(dest="geo_command", required=True)
    geo_import = geo_commands.add_parser("import", help="import a GeoJSON FeatureCollection")
    geo_import.add_argument("file", type=Path)
    geo_import.add_argument("--code-property", help="feature property with the commune code")
    geo_import.add_argument("--replace", action="store_true", help="drop earlier boundaries")
    from bot.campaign_cli import add_parser as add_campaign_parser

    add_campaign_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    from bot.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "check-config":
            mode = "sandbox" if settings.sandbox else "telegram"
            backend = settings.database_url.split(":")[0]
            print(f"Configuration OK ({mode} mode, database {backend}).")
            return 0
        if args.command == "db":
            return asyncio.run(_db_command(settings, args))
        if args.command == "qr":
            from bot.tools import write_poster

            return write_poster(settings, args.commune_code, args.out, args.bot_username)
        if args.command == "geo":
            from bot.tools import import_geojson

            return import_geojson(settings, args.file, args.code_property, replace=args.replace)
        if args.command == "campaign":
            from bot.campaign_cli import run as run_campaign

            return run_campaign(settings, args)
        if args.command == "sandbox" or settings.sandbox:
            from bot.sandbox_mode import run_sandbox

            return _run_until_signal(
                lambda stop: run_sandbox(settings, stop, port=args.__dict__.get("port"),
                                         rate_limits=not args.__dict__.get("no_rate_limits"))
            )
        from bot.live import run_live

        return _run_until_signal(lambda stop: run_live(settings, stop))
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2


def _run_until_signal(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await body(stop)

    asyncio.run(runner())
    return 0


async def _db_command(settings: Settings, args: argparse.Namespace) -> int:
    from storage import migrate
    from storage.db import Database

    db = Database(settings.database_url)
    try:
        if args.db_command == "upgrade":
            await migrate.upgrade(db)
            print(f"Database at revision {await migrate.current_revision(db)}.")
        elif args.db_command == "downgrade":
            await migrate.downgrade(db, args.revision)
            print(f"Database at revision {await migrate.current_revision(db)}.")
        else:
            print(await migrate.current_revision(db) or "empty (no revision)")
    finally:
        await db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
