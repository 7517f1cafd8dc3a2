"""Commune boundaries in the database: import from GeoJSON, load into a locator."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import select

from bot.domain.communes import CommuneDirectory
from bot.domain.geo import CommuneArea, CommuneLocator, parse_geojson
from storage.db import Database
from storage.models import CommuneAreaRow, utcnow


async def boundaries_version(db: Database) -> tuple[int, datetime | None]:
    """Changes whenever boundaries are imported (row count, latest import time)."""
    async with db.session() as session:
        count, latest = (await session.exec(
            select(func.count(), func.max(CommuneAreaRow.imported_at))
        )).one()
    return int(count), latest


async def load_locator(db: Database) -> CommuneLocator:
    async with db.session() as session:
        rows = [(r.commune_code, r.geometry) for r in (await session.exec(select(CommuneAreaRow)))]
    # parsing thousands of polygons is CPU work: keep it off the event loop
    return await asyncio.to_thread(
        lambda: CommuneLocator(CommuneArea.from_geometry_json(code, text) for code, text in rows)
    )


async def import_boundaries(
    db: Database, directory: CommuneDirectory, data: bytes, *, code_property: str | None = None,
    replace: bool = False,
) -> int:
    """Store the boundaries of a GeoJSON FeatureCollection; returns how many communes.

    Raises ``GeoImportError`` (one sentence) on bad input; nothing is stored then."""
    known = {c.code for p in directory.provinces() for c in directory.communes_of(p.code)}
    areas = parse_geojson(data, code_property=code_property, known_codes=known)
    async with db.transaction() as session:
        if replace:
            await session.exec(delete(CommuneAreaRow))
        for area in areas:
            existing = await session.get(CommuneAreaRow, area.commune_code)
            if existing is None:
                session.add(CommuneAreaRow(
                    commune_code=area.commune_code, geometry=area.to_geometry_json()
                ))
            else:
                existing.geometry = area.to_geometry_json()
                existing.imported_at = utcnow()
    return len(areas)
