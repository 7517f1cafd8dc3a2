"""Commune boundaries: which communes a GeoJSON import may hold, and the locator built from
stored boundaries (storage/areas.py reads and writes them)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.communes import CommuneDirectory
from bot.domain.geo import CommuneArea, CommuneLocator, parse_geojson


def known_codes(directory: CommuneDirectory) -> set[int]:
    return {c.code for p in directory.provinces() for c in directory.communes_of(p.code)}


def parse_boundaries(
    directory: CommuneDirectory, data: bytes, *, code_property: str | None = None
) -> list[CommuneArea]:
    """The boundaries of a GeoJSON FeatureCollection, checked against the directory.

    Raises ``GeoImportError`` (one sentence) on bad input."""
    return parse_geojson(data, code_property=code_property, known_codes=known_codes(directory))


def build_locator(rows: Iterable[tuple[int, str]]) -> CommuneLocator:
    """A locator from stored (commune code, geometry JSON) rows (CPU work: call it off the
    event loop)."""
    return CommuneLocator(CommuneArea.from_geometry_json(code, text) for code, text in rows)
