"""Commune boundaries in the database: import from GeoJSON, load into a locator."""

from __future__ import annotations

import asyncio
from datetime import datetime

import sqlalchemy as sa

from bot.domain.areas import build_locator, parse_boundaries
from bot.domain.communes import CommuneDirectory
from bot.domain.geo import CommuneLocator
from storage.db import Database
from storage.models import utcnow
from storage.tables import areas as _areas

_VERSION = sa.select(sa.func.count(), sa.func.max(_areas.c.imported_at))
_ROWS = sa.select(_areas.c.commune_code, _areas.c.geometry)
_EXISTS = sa.select(_areas.c.commune_code).where(
    _areas.c.commune_code == sa.bindparam("code"))
_INSERT = sa.insert(_areas)
_UPDATE = sa.update(_areas).where(_areas.c.commune_code == sa.bindparam("code")).values(
    geometry=sa.bindparam("text"), imported_at=sa.bindparam("at"))
_DELETE_ALL = sa.delete(_areas)


async def boundaries_version(db: Database) -> tuple[int, datetime | None]:
    """Changes whenever boundaries are imported (row count, latest import time)."""
    async with db.engine.connect() as conn:
        count, latest = (await conn.execute(_VERSION)).one()
    return int(count), latest


async def load_locator(db: Database) -> CommuneLocator:
    async with db.engine.connect() as conn:
        rows = [(r.commune_code, r.geometry) for r in await conn.execute(_ROWS)]
    # parsing thousands of polygons is CPU work: keep it off the event loop
    return await asyncio.to_thread(build_locator, rows)


async def import_boundaries(
    db: Database, directory: CommuneDirectory, data: bytes, *, code_property: str | None = None,
    replace: bool = False,
) -> int:
    """Store the boundaries of a GeoJSON FeatureCollection; returns how many communes.

    Raises ``GeoImportError`` (one sentence) on bad input; nothing is stored then."""
    areas = parse_boundaries(directory, data, code_property=code_property)
    async with db.transaction() as session:
        conn = await session.connection()
        if replace:
            await conn.execute(_DELETE_ALL)
        for area in areas:
            now, text = utcnow(), area.to_geometry_json()
            if (await conn.execute(_EXISTS, {"code": area.commune_code})).first() is None:
                await conn.execute(_INSERT, {"commune_code": area.commune_code,
                                             "geometry": text, "imported_at": now})
            else:
                await conn.execute(_UPDATE, {"code": area.commune_code, "text": text, "at": now})
    return len(areas)
