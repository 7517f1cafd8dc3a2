"""Commune boundaries and location routing: which commune contains a shared location.

An administrator may import commune boundaries from a GeoJSON ``FeatureCollection``
(one ``Polygon`` or ``MultiPolygon`` feature per commune, the commune code in a property
such as ``ma_xa``). When a resident then shares a location, :class:`CommuneLocator` picks
the commune whose boundary contains the point::

    areas = parse_geojson(raw_bytes, known_codes=directory_codes)   # GeoImportError if bad
    stored = [(a.commune_code, a.to_geometry_json()) for a in areas]  # one row per commune
    ...
    locator = CommuneLocator(CommuneArea.from_geometry_json(c, g) for c, g in stored)
    locator.locate(22.1, 104.3)   # -> 2998, or None outside every imported commune

Conventions:

- Coordinates are stored as GeoJSON orders them, ``(lon, lat)``; the query methods take
  ``(lat, lon)`` like a Telegram ``Location``. Latitude must lie in -90..90 and longitude
  in -180..180, else ``ValueError``.
- Point in polygon is even-odd ray casting over all rings of a polygon (the first ring is
  the outer boundary, the others are holes), so a point in a hole is outside. A point on
  an edge or a vertex, within ``BOUNDARY_TOLERANCE_DEG`` (about 0.1 mm), counts as inside;
  on a border shared by two communes the smaller commune code wins.
- Rings may be closed (GeoJSON) or open. No antimeridian handling (Vietnam needs none).

Pure Python, no I/O, no Telegram imports. Lookups use a uniform grid over polygon bounding
boxes and, inside each polygon, horizontal slabs of edges, so a lookup tests a few dozen
edges instead of every vertex of every commune.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = [
    "BOUNDARY_TOLERANCE_DEG",
    "CODE_PROPERTIES",
    "CommuneArea",
    "CommuneLocator",
    "GeoImportError",
    "Polygon",
    "Ring",
    "parse_geojson",
]

Ring = tuple[tuple[float, float], ...]
"""A linear ring of ``(lon, lat)`` vertices, closed or not."""
Polygon = tuple[Ring, ...]
"""The first ring is the outer boundary; any further rings are holes."""
BBox = tuple[float, float, float, float]
_Edge = tuple[float, float, float, float, float, float]

# Properties tried, in order, for the commune code when no ``code_property`` is given.
CODE_PROPERTIES: tuple[str, ...] = ("ma_xa", "maXa", "commune_code", "code", "ma")
# A point this close (in degrees) to an edge counts as on the boundary, i.e. inside.
# 1e-9 degree is about 0.1 mm: far below GPS precision, far above float rounding.
BOUNDARY_TOLERANCE_DEG = 1e-9
_EPS = BOUNDARY_TOLERANCE_DEG
_EPS2 = _EPS * _EPS
# Edges per horizontal slab aimed for when preparing a polygon, and the slab cap.
_EDGES_PER_SLAB = 12
_MAX_SLABS = 256
# Bad commune codes listed in an import error before "and N more".
_MAX_CODES_SHOWN = 5
# A polygon whose bbox spans more grid cells than this is kept in a short list checked on
# every lookup instead (keeps the index small if a huge or misplaced polygon is imported).
_MAX_CELLS_PER_POLYGON = 4096
_NO_BBOX: BBox = (math.inf, math.inf, -math.inf, -math.inf)


class GeoImportError(ValueError):
    """A boundary file cannot be imported; the message is one English sentence."""


def _check_lat_lon(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0):  # also rejects NaN
        raise ValueError(f"latitude {lat!r} is outside -90..90")
    if not (-180.0 <= lon <= 180.0):
        raise ValueError(f"longitude {lon!r} is outside -180..180")


# --------------------------------------------------------------------------- preparation


class _PolygonIndex:
    """One polygon with its bounding box; edge slabs for ray casting are built on first use.

    Building the slabs lazily keeps start-up cheap: a locator over thousands of detailed
    boundaries only prepares the communes where residents actually share locations.

    Each edge is stored once as ``(xa, ya, xb, yb, xlo, xhi)`` with ``ya <= yb`` (direction
    does not matter for parity or for the boundary test); slab ``i`` holds every edge whose
    y-range, widened by the tolerance, meets ``[miny + i*h, miny + (i+1)*h)``.
    """

    __slots__ = ("bbox", "maxx", "maxy", "minx", "miny", "nslabs", "polygon", "slab_scale", "slabs")

    def __init__(self, polygon: Polygon, bbox: BBox) -> None:
        self.polygon = polygon
        self.bbox = bbox
        self.minx = bbox[0] - _EPS
        self.miny = bbox[1] - _EPS
        self.maxx = bbox[2] + _EPS
        self.maxy = bbox[3] + _EPS
        self.nslabs = 1
        self.slab_scale = 0.0
        self.slabs: tuple[tuple[_Edge, ...], ...] | None = None

    def _build(self) -> tuple[tuple[_Edge, ...], ...]:
        edges: list[_Edge] = []
        for ring in self.polygon:
            closed = ring if ring[0] == ring[-1] else (*ring, ring[0])
            for (x1, y1), (x2, y2) in pairwise(closed):
                xlo, xhi = (x1, x2) if x1 <= x2 else (x2, x1)
                edges.append((x1, y1, x2, y2, xlo, xhi) if y1 <= y2 else (x2, y2, x1, y1, xlo, xhi))
        nslabs = max(1, min(_MAX_SLABS, len(edges) // _EDGES_PER_SLAB))
        height = self.maxy - self.miny
        scale = nslabs / height if height > 0 else 0.0
        miny = self.miny
        last_slab = nslabs - 1
        buckets: list[list[_Edge]] = [[] for _ in range(nslabs)]
        for edge in edges:
            first = int((edge[1] - _EPS - miny) * scale)
            last = int((edge[3] + _EPS - miny) * scale)
            first = 0 if first < 0 else min(first, last_slab)
            last = 0 if last < 0 else min(last, last_slab)
            for i in range(first, last + 1):
                buckets[i].append(edge)
        slabs = tuple(tuple(b) for b in buckets)
        self.nslabs = nslabs
        self.slab_scale = scale
        self.slabs = slabs  # set last: a concurrent reader sees old or complete state
        return slabs

    def contains(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` = ``(lon, lat)`` is inside, or on the boundary."""
        if x < self.minx or x > self.maxx or y < self.miny or y > self.maxy:
            return False
        slabs = self.slabs
        if slabs is None:
            slabs = self._build()
        i = int((y - self.miny) * self.slab_scale)
        inside = False
        for xa, ya, xb, yb, xlo, xhi in slabs[i if i < self.nslabs else self.nslabs - 1]:
            if y < ya - _EPS or y > yb + _EPS or x > xhi + _EPS:
                continue  # cannot touch the point, and the ray (towards +x) misses it
            dx = xb - xa
            dy = yb - ya
            cross = dx * (y - ya) - dy * (x - xa)  # > 0: point left of the upward edge
            if x >= xlo - _EPS and cross * cross <= _EPS2 * (dx * dx + dy * dy):
                return True  # on the edge (or its vertex)
            if ya <= y < yb and cross > 0:
                inside = not inside
        return inside


# --------------------------------------------------------------------------- areas


def _ring_bbox(ring: Sequence[Sequence[float]]) -> BBox:
    """Check one ring's shape, types and ranges; return its bbox. Raises ``ValueError``."""
    distinct = len(ring) - (1 if len(ring) > 1 and ring[0] == ring[-1] else 0)
    if distinct < 3:
        raise ValueError("a polygon ring needs at least 3 distinct vertices")
    try:
        xs, ys = zip(*ring, strict=True)
        minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
        finite = math.isfinite(sum(xs) + sum(ys))  # min/max can skip a NaN
    except (TypeError, ValueError) as exc:
        raise ValueError("a polygon vertex must be a (lon, lat) pair of numbers") from exc
    in_range = -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0
    if not finite or not in_range:
        for lon, lat in ring:
            _check_lat_lon(lat, lon)
        raise ValueError("a polygon vertex is not a finite (lon, lat) pair")
    return (minx, miny, maxx, maxy)


def _index_polygons(polygons: Sequence[Polygon]) -> tuple[tuple[_PolygonIndex, ...], BBox]:
    """Check every polygon; return their (lazy) indexes and the overall bbox.

    Raises ``ValueError``.
    """
    if not polygons:
        raise ValueError("a commune area needs at least one polygon")
    indexes = []
    for polygon in polygons:
        if not polygon:
            raise ValueError("a polygon needs at least an outer ring")
        boxes = [_ring_bbox(ring) for ring in polygon]
        bbox = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        indexes.append(_PolygonIndex(polygon, bbox))
    return tuple(indexes), (
        min(p.bbox[0] for p in indexes),
        min(p.bbox[1] for p in indexes),
        max(p.bbox[2] for p in indexes),
        max(p.bbox[3] for p in indexes),
    )


@dataclass(frozen=True, slots=True)
class CommuneArea:
    """The boundary of one commune: one or more polygons (islands), each maybe with holes.

    ``bbox`` may be omitted; it is then computed. If given, it must match the polygons.
    """

    commune_code: int
    polygons: tuple[Polygon, ...]
    bbox: BBox = _NO_BBOX
    _index: tuple[_PolygonIndex, ...] = field(
        default=(), init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index, computed = _index_polygons(self.polygons)
        object.__setattr__(self, "_index", index)
        if self.bbox == _NO_BBOX:
            object.__setattr__(self, "bbox", computed)
        elif tuple(self.bbox) != computed:
            raise ValueError(
                f"bbox {self.bbox!r} of commune {self.commune_code} does not match its "
                f"polygons {computed!r}"
            )

    @classmethod
    def from_polygons(
        cls, commune_code: int, polygons: Iterable[Iterable[Iterable[Sequence[float]]]]
    ) -> CommuneArea:
        """Build from nested sequences of ``(lon, lat)`` pairs (lists are fine)."""
        return cls(
            commune_code,
            tuple(
                tuple(tuple((float(v[0]), float(v[1])) for v in ring) for ring in polygon)
                for polygon in polygons
            ),
        )

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies inside the commune or on its boundary."""
        _check_lat_lon(lat, lon)
        minx, miny, maxx, maxy = self.bbox
        if lon < minx - _EPS or lon > maxx + _EPS or lat < miny - _EPS or lat > maxy + _EPS:
            return False
        return any(p.contains(lon, lat) for p in self._index)

    def to_geometry_json(self) -> str:
        """A compact GeoJSON ``MultiPolygon`` (rings closed, floats exact) for storage."""
        coordinates = [[_closed_ring_list(ring) for ring in polygon] for polygon in self.polygons]
        return json.dumps(
            {"type": "MultiPolygon", "coordinates": coordinates},
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def from_geometry_json(cls, commune_code: int, text: str) -> CommuneArea:
        """Read what :meth:`to_geometry_json` wrote (a ``Polygon`` is accepted too)."""
        where = f"the stored geometry of commune {commune_code}"
        if not isinstance(text, str):
            raise GeoImportError(f"{where} is not text")
        geometry = _load_json(text, where)
        return _make_area(commune_code, _read_geometry(geometry, where), where)


def _closed_ring_list(ring: Ring) -> list[list[float]]:
    out = [[lon, lat] for lon, lat in ring]
    if out[0] != out[-1]:
        out.append(list(out[0]))
    return out


# --------------------------------------------------------------------------- GeoJSON import


def _read_position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) < 2:
        raise GeoImportError(f"{where} has a position that is not a [longitude, latitude] pair")
    lon, lat = value[0], value[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        raise GeoImportError(f"{where} has a coordinate that is not a number")
    lon_f, lat_f = float(lon), float(lat)
    if not (-180.0 <= lon_f <= 180.0 and -90.0 <= lat_f <= 90.0):
        raise GeoImportError(
            f"{where} has a position [{lon}, {lat}] outside longitude -180..180 / latitude "
            "-90..90 (positions must be [longitude, latitude] in WGS 84 degrees)"
        )
    return (lon_f, lat_f)


def _read_ring(value: Any, where: str) -> Ring:
    if not isinstance(value, list):
        raise GeoImportError(f"{where} has a polygon ring that is not a list of positions")
    ring: Ring | None = None
    # Fast path (the usual case): lists of two or three plain numbers, all in range.
    if value and set(map(type, value)) == {list} and min(map(len, value)) >= 2:
        xs = [p[0] for p in value]
        ys = [p[1] for p in value]
        kinds = set(map(type, xs))
        kinds.update(map(type, ys))
        if kinds <= {float, int}:
            if int in kinds:
                xs = [float(v) for v in xs]
                ys = [float(v) for v in ys]
            if -180.0 <= min(xs) <= max(xs) <= 180.0 and -90.0 <= min(ys) <= max(ys) <= 90.0:
                ring = tuple(zip(xs, ys, strict=True))
    if ring is None:  # slow path: find the bad position and say what is wrong with it
        ring = tuple(_read_position(p, where) for p in value)
    distinct = len(ring) - (1 if len(ring) > 1 and ring[0] == ring[-1] else 0)
    if distinct < 3:
        raise GeoImportError(f"{where} has a polygon ring with fewer than 3 vertices")
    return ring


def _read_polygon(value: Any, where: str) -> Polygon:
    if not isinstance(value, list) or not value:
        raise GeoImportError(f"{where} has a polygon without rings")
    return tuple(_read_ring(ring_value, where) for ring_value in value)


def _reject_constant(name: str) -> Any:
    raise GeoImportError(f"the JSON contains {name}, which GeoJSON does not allow")


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise GeoImportError(
            f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise GeoImportError(f"{what} is not valid JSON (nested too deeply)") from exc


def _make_area(code: int, polygons: tuple[Polygon, ...], where: str) -> CommuneArea:
    try:
        return CommuneArea(code, polygons)
    except GeoImportError:
        raise
    except ValueError as exc:  # the readers check the same things; this is a safety net
        raise GeoImportError(f"{where} has an invalid geometry: {exc}") from exc


def _read_geometry(geometry: Any, where: str) -> tuple[Polygon, ...]:
    if not isinstance(geometry, dict):
        raise GeoImportError(f"{where} has no geometry")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        return (_read_polygon(coordinates, where),)
    if kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise GeoImportError(f"{where} has a MultiPolygon without polygons")
        return tuple(_read_polygon(p, where) for p in coordinates)
    raise GeoImportError(
        f"{where} has a {kind!r} geometry; only Polygon and MultiPolygon are supported"
    )


def _code_from_value(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool):
        code = None
    elif isinstance(value, int):
        code = value
    elif isinstance(value, float) and value.is_integer():
        code = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        code = int(value.strip())  # "02998" -> 2998
    else:
        code = None
    if code is None or code <= 0:
        raise GeoImportError(
            f"{where} has a {name!r} property that is not a commune code: {value!r}"
        )
    return code


def _read_code(properties: Any, where: str, code_property: str | None) -> int:
    props: dict[str, Any] = properties if isinstance(properties, dict) else {}
    if code_property is not None:
        if props.get(code_property) is None:
            raise GeoImportError(f"{where} has no {code_property!r} property")
        return _code_from_value(props[code_property], where, code_property)
    for name in CODE_PROPERTIES:
        if props.get(name) is not None:
            return _code_from_value(props[name], where, name)
    wanted = {name.lower() for name in CODE_PROPERTIES}
    for name, value in props.items():  # tolerate "MA_XA", "Code", ...
        if isinstance(name, str) and name.lower() in wanted and value is not None:
            return _code_from_value(value, where, name)
    raise GeoImportError(
        f"{where} has none of the properties {', '.join(CODE_PROPERTIES)} for the commune code"
    )


def parse_geojson(
    data: bytes | str,
    *,
    code_property: str | None = None,
    known_codes: Container[int] | None = None,
) -> list[CommuneArea]:
    """Read commune boundaries from a GeoJSON ``FeatureCollection``.

    Each feature is a ``Polygon`` or ``MultiPolygon`` whose commune code is read from
    ``code_property``, or else from the first present of :data:`CODE_PROPERTIES`
    (case-insensitively as a fallback); codes may be zero-padded strings ("02998" -> 2998).
    Features sharing a code are merged into one area. With ``known_codes``, any code not in
    it is an error that lists up to five of them. Features are numbered from 1 in messages.
    Returns the areas sorted by commune code; raises :class:`GeoImportError`.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise GeoImportError("the file is not UTF-8 text") from exc
    else:
        text = data.removeprefix("\ufeff")
    document = _load_json(text, "the file")
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        found = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise GeoImportError(f"the file is not a GeoJSON FeatureCollection (found {found!r})")
    features = document.get("features")
    if not isinstance(features, list):
        raise GeoImportError("the FeatureCollection has no 'features' list")
    if not features:
        raise GeoImportError("the FeatureCollection contains no features")

    merged: dict[int, list[Polygon]] = {}
    unknown: list[int] = []
    for number, feature in enumerate(features, start=1):
        where = f"feature {number}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise GeoImportError(f"{where} is not a GeoJSON Feature")
        code = _read_code(feature.get("properties"), where, code_property)
        polygons = _read_geometry(feature.get("geometry"), where)
        if known_codes is not None and code not in known_codes:
            if code not in unknown:
                unknown.append(code)
            continue
        merged.setdefault(code, []).extend(polygons)
    if unknown:
        shown = ", ".join(str(c) for c in unknown[:_MAX_CODES_SHOWN])
        more = len(unknown) - _MAX_CODES_SHOWN
        tail = f" and {more} more" if more > 0 else ""
        plural = "code is" if len(unknown) == 1 else "codes are"
        raise GeoImportError(f"{len(unknown)} commune {plural} not known: {shown}{tail}")
    return [_make_area(code, tuple(merged[code]), f"commune {code}") for code in sorted(merged)]


# --------------------------------------------------------------------------- locator


class CommuneLocator:
    """Find the commune containing a point among many areas.

    A uniform grid (``cell_deg`` degrees, 0.05 by default, about 5.5 km) maps each cell to
    the polygons whose bounding box meets it, sorted by commune code; a lookup tests only
    those, so the first hit is the smallest code on a shared border. Island polygons of one
    commune are indexed separately, so a scattered "đặc khu" does not fill the sea. A
    polygon spanning more than 4,096 cells goes to a short list tested on every lookup.
    """

    __slots__ = ("_cell", "_count", "_grid", "_inv_cell", "_large")

    # Cells per row in the key ix + iy * _ROW; covers -180..180 at any cell >= 0.0001 deg.
    _ROW = 4_000_000

    def __init__(self, areas: Iterable[CommuneArea], *, cell_deg: float = 0.05) -> None:
        if not (cell_deg >= 1e-4):
            raise ValueError("cell_deg must be at least 0.0001 degree")
        self._cell = cell_deg
        self._inv_cell = 1.0 / cell_deg
        entries: list[tuple[int, int, _PolygonIndex]] = []  # (code, order, polygon)
        seen: set[int] = set()
        for area in areas:
            if area.commune_code in seen:
                raise ValueError(f"commune code {area.commune_code} appears more than once")
            seen.add(area.commune_code)
            for polygon in area._index:
                entries.append((area.commune_code, len(entries), polygon))
        self._count = len(seen)
        entries.sort(key=lambda e: (e[0], e[1]))
        grid: dict[int, list[tuple[int, _PolygonIndex]]] = {}
        large: list[tuple[int, _PolygonIndex]] = []
        for code, _order, polygon in entries:
            ix0, iy0 = self._cell_of(polygon.minx, polygon.miny)
            ix1, iy1 = self._cell_of(polygon.maxx, polygon.maxy)
            if (ix1 - ix0 + 1) * (iy1 - iy0 + 1) > _MAX_CELLS_PER_POLYGON:
                large.append((code, polygon))  # checked on every lookup, after its bbox
                continue
            for iy in range(iy0, iy1 + 1):
                base = iy * self._ROW
                for ix in range(ix0, ix1 + 1):
                    grid.setdefault(base + ix, []).append((code, polygon))
        self._grid: dict[int, tuple[tuple[int, _PolygonIndex], ...]] = {
            key: tuple(cands) for key, cands in grid.items()
        }
        self._large = tuple(large)

    def _cell_of(self, lon: float, lat: float) -> tuple[int, int]:
        return (
            math.floor((lon + 180.0) * self._inv_cell),
            math.floor((lat + 90.0) * self._inv_cell),
        )

    def __len__(self) -> int:
        """The number of communes (not polygons) indexed."""
        return self._count

    def locate(self, lat: float, lon: float) -> int | None:
        """The code of the commune containing the point (smallest on a shared border)."""
        _check_lat_lon(lat, lon)
        ix, iy = self._cell_of(lon, lat)
        found: int | None = None
        for code, polygon in self._grid.get(iy * self._ROW + ix, ()):
            if polygon.contains(lon, lat):
                found = code
                break
        for code, polygon in self._large:
            if found is not None and code >= found:
                break
            if polygon.contains(lon, lat):
                return code
        return found
