"""Operator tools behind the CLI: QR posters and boundary import. Each prints what it did
and returns an exit code; problems are one sentence on stderr."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from bot.domain.communes import CommuneDirectory
from bot.domain.geo import GeoImportError
from bot.domain.posters import deep_link, render_poster
from bot.sandbox_mode import SANDBOX_BOT_USERNAME
from bot.settings import Settings
from storage import migrate
from storage.areas import import_boundaries
from storage.db import Database


def write_poster(
    settings: Settings, commune_code: int, out: Path | None, bot_username: str | None
) -> int:
    directory = CommuneDirectory.load()
    commune = directory.commune(commune_code)
    province = directory.province(commune.province_code) if commune else None
    if commune is None or province is None:
        print(f"No commune has code {commune_code}.", file=sys.stderr)
        return 2
    username = bot_username or settings.bot_username
    if username is None and settings.sandbox:
        username = SANDBOX_BOT_USERNAME
    if username is None:
        print("Set TIPLINE_BOT_USERNAME (the bot's @username) or pass --bot-username.",
              file=sys.stderr)
        return 2
    try:
        link = deep_link(username, commune.code)
    except ValueError as error:
        print(f"{error}.", file=sys.stderr)
        return 2
    poster = render_poster(link=link, commune_name=commune.name, province_name=province.name)
    folder = out or Path(settings.data_dir) / "posters"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"poster-{commune.code}"
    stem.with_suffix(".png").write_bytes(poster.png)
    stem.with_suffix(".pdf").write_bytes(poster.pdf)
    print(link)
    print(f"Poster for {commune.name}, {province.name}: {stem}.png and {stem}.pdf")
    return 0


def import_geojson(
    settings: Settings, path: Path, code_property: str | None, *, replace: bool
) -> int:
    if not path.is_file():
        print(f"No such file: {path}.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"Reading {path} ({path.stat().st_size / 1e6:.1f} MB)...", flush=True)
    data = path.read_bytes()
    try:
        count = asyncio.run(_import(settings, data, code_property, replace))
    except GeoImportError as error:
        print(f"Nothing was imported: {error}", file=sys.stderr)
        return 2
    print(f"Imported the boundaries of {count} communes in {time.perf_counter() - started:.1f} s."
          " A running bot picks them up within 10 minutes.")
    return 0


async def _import(settings: Settings, data: bytes, code_property: str | None, replace: bool) -> int:
    directory = CommuneDirectory.load()
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        return await import_boundaries(
            db, directory, data, code_property=code_property, replace=replace
        )
    finally:
        await db.close()
