"""Commune boundaries: point in polygon, GeoJSON import, and the grid locator."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from bot.domain.geo import (
    CommuneArea,
    CommuneLocator,
    GeoImportError,
    Polygon,
    Ring,
    parse_geojson,
)

FIXTURES = Path(__file__).parent / "fixtures" / "geo"

# Vietnam's bounding box and a 41 x 81 tiling of it: 3,321 tiles, one per commune.
VN_LON = (102.0, 110.0)
VN_LAT = (8.0, 23.5)
GRID_COLS, GRID_ROWS = 41, 81


def square(x0: float, y0: float, x1: float, y1: float, *, closed: bool = True) -> Ring:
    ring = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    return (*ring, ring[0]) if closed else ring


def area(code: int, *polygons: Polygon) -> CommuneArea:
    return CommuneArea(code, tuple(polygons))


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("closed", [True, False])
def test_square_inside_outside_edges_and_vertices(closed: bool) -> None:
    a = area(1, (square(104.0, 22.0, 104.1, 22.1, closed=closed),))
    assert a.bbox == (104.0, 22.0, 104.1, 22.1)
    assert a.contains(22.05, 104.05)
    assert not a.contains(22.05, 104.15)
    assert not a.contains(21.99, 104.05)
    # edges and vertices count as inside (contains takes lat, lon)
    for lat, lon in [(22.0, 104.05), (22.1, 104.05), (22.05, 104.0), (22.05, 104.1)]:
        assert a.contains(lat, lon), (lat, lon)
    for lat, lon in [(22.0, 104.0), (22.0, 104.1), (22.1, 104.1), (22.1, 104.0)]:
        assert a.contains(lat, lon), (lat, lon)
    # just beyond an edge is outside
    assert not a.contains(22.05, 104.1 + 1e-7)
    assert not a.contains(22.1 + 1e-7, 104.05)


def test_point_on_a_slanted_edge_is_inside() -> None:
    triangle = ((0.0, 0.0), (0.3, 0.0), (0.0, 0.7))
    a = area(1, (triangle,))
    for t in (0.1, 1 / 3, 0.5, 0.77):  # points on the hypotenuse, with float rounding
        lon, lat = 0.3 * (1 - t), 0.7 * t
        assert a.contains(lat, lon), t
    assert not a.contains(0.35 + 1e-6, 0.15 + 1e-6)


def test_concave_u_shape() -> None:
    # A "U": two arms from x=0..1 and x=2..3 joined by a base y=0..1, arms reach y=3.
    u = ((0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (2.0, 3.0), (2.0, 1.0), (1.0, 1.0), (1.0, 3.0),
         (0.0, 3.0))  # fmt: skip
    a = area(7, (u,))
    assert a.contains(0.5, 1.5)  # base
    assert a.contains(2.0, 0.5)  # left arm
    assert a.contains(2.0, 2.5)  # right arm
    assert not a.contains(2.0, 1.5)  # the notch between the arms
    assert not a.contains(3.0, 1.5)  # level with the arm tips, in the notch mouth
    assert a.contains(1.0, 1.5)  # bottom edge of the notch
    assert a.contains(1.0, 2.0)  # reflex vertex
    assert a.contains(2.0, 1.0)  # notch side edge
    # a horizontal ray through vertices (y = 1 and y = 3 pass through several) stays right
    assert not a.contains(1.0, -0.5)
    assert not a.contains(3.0, -0.5)
    assert not a.contains(3.0, 3.5)


def test_hole_is_outside_but_its_edge_is_inside() -> None:
    outer = square(0.0, 0.0, 4.0, 4.0)
    hole = ((1.0, 1.0), (1.0, 3.0), (3.0, 3.0), (3.0, 1.0), (1.0, 1.0))
    a = area(5, (outer, hole))
    assert not a.contains(2.0, 2.0)  # in the lagoon
    assert a.contains(0.5, 2.0)  # between the lagoon and the coast
    assert a.contains(1.0, 2.0)  # on the lagoon's edge
    assert a.contains(3.0, 3.0)  # on the lagoon's corner
    assert not a.contains(2.0, 5.0)


def test_multipolygon_islands() -> None:
    a = area(9, (square(0.0, 0.0, 1.0, 1.0),), (square(5.0, 5.0, 6.0, 6.0),))
    assert a.bbox == (0.0, 0.0, 6.0, 6.0)
    assert a.contains(0.5, 0.5)
    assert a.contains(5.5, 5.5)
    assert not a.contains(3.0, 3.0)  # open sea inside the bbox


def test_overlapping_pieces_of_one_commune_do_not_cancel() -> None:
    a = area(9, (square(0.0, 0.0, 2.0, 2.0),), (square(1.0, 1.0, 3.0, 3.0),))
    assert a.contains(1.5, 1.5)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 105.0), (-90.5, 105.0), (21.0, 180.01), (21.0, -181.0), (math.nan, 105.0),
     (21.0, math.inf)],
)  # fmt: skip
def test_invalid_coordinates_are_rejected(lat: float, lon: float) -> None:
    a = area(1, (square(104.0, 22.0, 104.1, 22.1),))
    locator = CommuneLocator([a])
    with pytest.raises(ValueError, match=r"latitude|longitude"):
        a.contains(lat, lon)
    with pytest.raises(ValueError, match=r"latitude|longitude"):
        locator.locate(lat, lon)


def test_extreme_but_valid_coordinates_are_accepted() -> None:
    locator = CommuneLocator([area(1, (square(104.0, 22.0, 104.1, 22.1),))])
    for lat, lon in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)]:
        assert locator.locate(lat, lon) is None


def test_malformed_areas_are_rejected() -> None:
    with pytest.raises(ValueError, match="3 distinct"):
        area(1, (((0.0, 0.0), (1.0, 1.0), (0.0, 0.0)),))
    with pytest.raises(ValueError, match="at least one polygon"):
        CommuneArea(1, ())
    with pytest.raises(ValueError, match="latitude"):
        area(1, (square(104.0, 22.0, 104.1, 95.0),))
    with pytest.raises(ValueError, match="does not match"):
        CommuneArea(1, ((square(0.0, 0.0, 1.0, 1.0),),), (0.0, 0.0, 2.0, 2.0))
    ok = CommuneArea(1, ((square(0.0, 0.0, 1.0, 1.0),),), (0.0, 0.0, 1.0, 1.0))
    assert ok.contains(0.5, 0.5)


def test_from_polygons_accepts_lists() -> None:
    a = CommuneArea.from_polygons(4, [[[[0, 0], [1, 0], [1, 1], [0, 0]]]])
    assert a.polygons == ((((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)),),)
    assert a.contains(0.2, 0.5)


# ----------------------------------------------------------------------------- locator


def test_adjacent_communes_share_an_edge_smallest_code_wins() -> None:
    west = area(3001, (square(104.0, 22.0, 104.1, 22.1),))
    east = area(2998, (square(104.1, 22.0, 104.2, 22.1),))
    for order in ([west, east], [east, west]):
        locator = CommuneLocator(order)
        assert len(locator) == 2
        assert locator.locate(22.05, 104.05) == 3001
        assert locator.locate(22.05, 104.15) == 2998
        assert locator.locate(22.05, 104.1) == 2998  # on the shared edge
        assert locator.locate(22.1, 104.1) == 2998  # shared vertex
        assert locator.locate(22.05, 104.25) is None
        assert locator.locate(10.0, 106.0) is None


def test_locator_island_commune_and_mainland_with_overlapping_bboxes() -> None:
    areas = parse_geojson((FIXTURES / "islands.geojson").read_bytes())
    assert [a.commune_code for a in areas] == [30990, 31000]
    zone = areas[1]
    assert len(zone.polygons) == 3  # two islands from a MultiPolygon, one more feature
    locator = CommuneLocator(areas)
    assert len(locator) == 2
    assert locator.locate(20.05, 107.05) == 31000  # big island
    assert locator.locate(20.15, 107.15) is None  # its lagoon
    assert locator.locate(20.03, 107.55) == 31000  # small island
    assert locator.locate(20.55, 107.85) == 31000  # the island from a separate feature
    assert locator.locate(20.3, 107.7) is None  # sea between the islands
    assert locator.locate(20.5, 106.7) == 30990  # mainland


def test_locator_rejects_duplicate_codes_and_handles_empty() -> None:
    a = area(1, (square(0.0, 0.0, 1.0, 1.0),))
    with pytest.raises(ValueError, match="more than once"):
        CommuneLocator([a, a])
    empty = CommuneLocator([])
    assert len(empty) == 0
    assert empty.locate(21.0, 105.8) is None


def test_polygon_bigger_than_many_cells_and_tiny_cells() -> None:
    for big_code, small_code in ((2, 1), (1, 2)):
        big = area(big_code, (square(102.0, 8.0, 110.0, 23.5),))
        small = area(small_code, (square(105.0, 20.0, 105.01, 20.01),))
        for cell in (0.05, 0.0001, 3.0):  # at 0.0001 the big one is too big for the grid
            locator = CommuneLocator([big, small], cell_deg=cell)
            assert locator.locate(20.005, 105.005) == 1  # in both: the smaller code
            assert locator.locate(15.0, 107.0) == big_code
            assert locator.locate(23.5, 110.0) == big_code  # corner
            assert locator.locate(7.9, 107.0) is None
    with pytest.raises(ValueError, match="cell_deg"):
        CommuneLocator([big], cell_deg=0.0)


# ----------------------------------------------------------------------------- GeoJSON


def test_parse_zero_padded_string_codes() -> None:
    areas = parse_geojson((FIXTURES / "adjacent.geojson").read_text(encoding="utf-8"))
    assert [a.commune_code for a in areas] == [2998, 3001]
    assert areas[0].bbox == (104.0, 22.0, 104.1, 22.1)
    locator = CommuneLocator(areas)
    assert locator.locate(22.05, 104.05) == 2998
    assert locator.locate(22.05, 104.1) == 2998
    assert locator.locate(22.05, 104.19) == 3001


def test_parse_accepts_bytes_with_bom_and_known_codes() -> None:
    raw = b"\xef\xbb\xbf" + (FIXTURES / "adjacent.geojson").read_bytes()
    areas = parse_geojson(raw, known_codes={2998, 3001, 5})
    assert len(areas) == 2


def _collection(*features: dict[str, object]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _feature(props: dict[str, object], geometry: dict[str, object] | None = None) -> dict:
    if geometry is None:
        geometry = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_code_property_choice_and_fallbacks() -> None:
    doc = _collection(_feature({"ma": 7, "code": "12"}))
    assert parse_geojson(doc)[0].commune_code == 12  # "code" comes before "ma"
    assert parse_geojson(doc, code_property="ma")[0].commune_code == 7
    assert parse_geojson(_collection(_feature({"MA_XA": "00042"})))[0].commune_code == 42
    assert parse_geojson(_collection(_feature({"commune_code": 5.0})))[0].commune_code == 5
    with pytest.raises(GeoImportError, match="feature 1 has no 'id_xa' property"):
        parse_geojson(doc, code_property="id_xa")


def test_features_with_the_same_code_are_merged() -> None:
    second = {"type": "Polygon", "coordinates": [[[5, 5], [6, 5], [6, 6], [5, 5]]]}
    doc = _collection(_feature({"ma_xa": 1}), _feature({"ma_xa": "001"}, second))
    (merged,) = parse_geojson(doc)
    assert merged.commune_code == 1
    assert len(merged.polygons) == 2
    assert merged.bbox == (0.0, 0.0, 6.0, 6.0)


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ("{not json", r"the file is not valid JSON \(line 1, column 2"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[]", "not a GeoJSON FeatureCollection"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection \\(found 'Feature'\\)"),
        ('{"type": "FeatureCollection"}', "no 'features' list"),
        ('{"type": "FeatureCollection", "features": []}', "contains no features"),
        (_collection({"type": "Polygon"}), "feature 1 is not a GeoJSON Feature"),
        (_collection(_feature({"ten": "x"})), "feature 1 has none of the properties ma_xa"),
        (_collection(_feature({"ma_xa": None})), "feature 1 has none of the properties"),
        (_collection(_feature({"ma_xa": "abc"})), "'ma_xa' property that is not a commune code"),
        (_collection(_feature({"ma_xa": True})), "not a commune code"),
        (_collection(_feature({"ma_xa": 0})), "not a commune code"),
        (_collection(_feature({"ma_xa": 1}, None) | {"geometry": None}), "has no geometry"),
        (
            _collection(_feature({"ma_xa": 1}, {"type": "GeometryCollection", "geometries": []})),
            "'GeometryCollection' geometry; only Polygon and MultiPolygon",
        ),
        (
            _collection(_feature({"ma_xa": 1}, {"type": "Polygon", "coordinates": [[[0, 0]]]})),
            "fewer than 3 vertices",
        ),
        (
            _collection(_feature({"ma_xa": 1}, {"type": "Polygon", "coordinates": [5]})),
            "not a list of positions",
        ),
        (
            _collection(
                _feature({"ma_xa": 1}, {"type": "Polygon", "coordinates": [[[0, "a"], [1, 1]]]})
            ),
            "not a number",
        ),
        (
            # latitude first by mistake: 105.8 is not a latitude
            _collection(
                _feature(
                    {"ma_xa": 1},
                    {"type": "Polygon", "coordinates": [[[21.0, 105.8], [21.1, 105.8], [21, 106]]]},
                )
            ),
            r"position \[21.0, 105.8\] outside .* must be \[longitude, latitude\]",
        ),
        (
            _collection(_feature({"ma_xa": 1}, {"type": "MultiPolygon", "coordinates": []})),
            "MultiPolygon without polygons",
        ),
    ],
)
def test_parse_errors_are_one_clear_sentence(data: str | bytes, sentence: str) -> None:
    with pytest.raises(GeoImportError, match=sentence) as info:
        parse_geojson(data)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    text = (
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"ma_xa":1},'
        '"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,@X@],[0,0]]]}}]}'
    ).replace("@X@", constant)
    with pytest.raises(GeoImportError, match=f"contains {constant}"):
        parse_geojson(text)
    with pytest.raises(GeoImportError, match=f"contains {constant}"):
        stored = '{"type":"Polygon","coordinates":[[[0,@X@]]]}'.replace("@X@", constant)
        CommuneArea.from_geometry_json(1, stored)


def test_positions_with_altitude_and_integers_are_read() -> None:
    geometry = {"type": "Polygon", "coordinates": [[[104, 22, 350.5], [105, 22, 0], [105, 23, 1]]]}
    (a,) = parse_geojson(_collection(_feature({"ma_xa": 1}, geometry)))
    assert a.polygons == ((((104.0, 22.0), (105.0, 22.0), (105.0, 23.0)),),)
    assert all(type(v) is float for v in a.polygons[0][0][0])


def test_malformed_vertices_in_code_are_value_errors() -> None:
    with pytest.raises(ValueError, match="latitude nan"):
        area(1, (((0.0, 0.0), (1.0, math.nan), (1.0, 1.0)),))
    with pytest.raises(ValueError, match="pair of numbers"):
        area(1, (((0.0, 0.0, 5.0), (1.0, 0.0, 5.0), (1.0, 1.0, 5.0)),))
    with pytest.raises(ValueError, match="pair of numbers"):
        area(1, (((0.0, 0.0), (1.0, "0"), (1.0, 1.0)),))  # type: ignore[arg-type]


def test_fixture_files_with_errors() -> None:
    with pytest.raises(GeoImportError, match="feature 1 has a 'Point' geometry"):
        parse_geojson((FIXTURES / "point_geometry.geojson").read_bytes())
    with pytest.raises(GeoImportError, match="feature 2 has none of the properties"):
        parse_geojson((FIXTURES / "missing_code.geojson").read_bytes())


def test_unknown_codes_are_listed_up_to_five() -> None:
    doc = _collection(*[_feature({"ma_xa": f"{c:05d}"}) for c in (1, 90001, 2, 90002, 90003)])
    with pytest.raises(
        GeoImportError, match=r"^3 commune codes are not known: 90001, 90002, 90003$"
    ):
        parse_geojson(doc, known_codes={1, 2})
    many = _collection(*[_feature({"ma_xa": c}) for c in range(100, 108)])
    with pytest.raises(
        GeoImportError, match=r"^8 commune codes are not known: 100, 101, 102, 103, 104 and 3 more$"
    ):
        parse_geojson(many, known_codes=range(1, 50))
    with pytest.raises(GeoImportError, match=r"^1 commune code is not known: 3001$"):
        parse_geojson((FIXTURES / "adjacent.geojson").read_bytes(), known_codes={2998})


# ----------------------------------------------------------------------------- storage


def test_geometry_json_round_trip() -> None:
    outer = ((107.0, 20.0), (107.3, 20.0), (107.3, 20.3), (107.0, 20.3))  # open ring
    hole = square(107.1, 20.1, 107.2, 20.2)
    original = area(31000, (outer, hole), (((107.5, 20.0), (107.6, 20.0), (107.55, 0.1 + 20)),))
    text = original.to_geometry_json()
    assert " " not in text
    assert json.loads(text)["type"] == "MultiPolygon"
    assert json.loads(text)["coordinates"][0][0][-1] == [107.0, 20.0]  # closed on the way out
    restored = CommuneArea.from_geometry_json(31000, text)
    assert restored.commune_code == 31000
    assert restored.bbox == original.bbox
    island = original.polygons[1][0]
    assert restored.polygons[1] == ((*island, island[0]),)
    assert restored.to_geometry_json() == text  # stable once closed
    for lat, lon in [(20.05, 107.05), (20.15, 107.15), (20.02, 107.55), (20.3, 107.3)]:
        assert restored.contains(lat, lon) == original.contains(lat, lon)
    # a stored Polygon (not Multi) is accepted too
    polygon_text = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1]]]})
    assert CommuneArea.from_geometry_json(1, polygon_text).contains(0.2, 0.2)


def test_from_geometry_json_errors() -> None:
    with pytest.raises(GeoImportError, match="commune 5 is not valid JSON"):
        CommuneArea.from_geometry_json(5, "{")
    with pytest.raises(GeoImportError, match="'Point' geometry"):
        CommuneArea.from_geometry_json(5, '{"type":"Point","coordinates":[1,2]}')


# ----------------------------------------------------------------------------- 3,321 tiles


def wobbly_tiling(
    interior: int, *, seed: int = 20250701
) -> tuple[list[CommuneArea], dict[tuple[int, int], int]]:
    """Tile Vietnam's bbox with 41 x 81 cells whose shared borders are the same zigzags.

    Every border between two grid corners is a polyline of ``interior`` jittered points
    (amplitude up to 0.2 of a cell, tapering to zero at the corners, so tiles stay simple
    and never overlap). Each tile has ``4 * (interior + 1)`` vertices. Returns the areas and
    the code of each tile by (column, row).
    """
    rng = random.Random(seed)
    dx = (VN_LON[1] - VN_LON[0]) / GRID_COLS
    dy = (VN_LAT[1] - VN_LAT[0]) / GRID_ROWS

    def corner(i: int, j: int) -> tuple[float, float]:
        return (VN_LON[0] + i * dx, VN_LAT[0] + j * dy)

    def border(a: tuple[float, float], b: tuple[float, float], size: float) -> Ring:
        nx, ny = (0.0, 1.0) if a[1] == b[1] else (1.0, 0.0)  # jitter across the border
        points = []
        for k in range(1, interior + 1):
            t = k / (interior + 1)
            off = 0.2 * size * math.sin(math.pi * t) * rng.uniform(-1.0, 1.0)
            points.append(
                (a[0] + t * (b[0] - a[0]) + nx * off, a[1] + t * (b[1] - a[1]) + ny * off)
            )
        return tuple(points)

    horizontal = {
        (i, j): border(corner(i, j), corner(i + 1, j), dy)
        for j in range(GRID_ROWS + 1)
        for i in range(GRID_COLS)
    }
    vertical = {
        (i, j): border(corner(i, j), corner(i, j + 1), dx)
        for j in range(GRID_ROWS)
        for i in range(GRID_COLS + 1)
    }
    codes = rng.sample(range(1, 100_000), GRID_COLS * GRID_ROWS)
    areas: list[CommuneArea] = []
    tile_codes: dict[tuple[int, int], int] = {}
    for j in range(GRID_ROWS):
        for i in range(GRID_COLS):
            ring = (
                corner(i, j),
                *horizontal[i, j],
                corner(i + 1, j),
                *vertical[i + 1, j],
                corner(i + 1, j + 1),
                *reversed(horizontal[i, j + 1]),
                corner(i, j + 1),
                *reversed(vertical[i, j]),
                corner(i, j),
            )
            code = codes[j * GRID_COLS + i]
            tile_codes[i, j] = code
            areas.append(CommuneArea(code, ((ring,),)))
    return areas, tile_codes


def _naive_contains(polygon: Polygon, lon: float, lat: float) -> bool:
    """Textbook even-odd ray casting over every edge (no slabs, no boundary handling)."""
    inside = False
    for ring in polygon:
        for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
    return inside


def star(n: int, cx: float, cy: float, r_min: float, r_max: float, rng: random.Random) -> Ring:
    """A star-shaped (so simple) ring of ``n`` vertices with random radii."""
    return tuple(
        (
            cx + rng.uniform(r_min, r_max) * math.cos(2 * math.pi * k / n),
            cy + rng.uniform(r_min, r_max) * math.sin(2 * math.pi * k / n),
        )
        for k in range(n)
    )


@pytest.mark.parametrize(("n", "points"), [(3, 3000), (40, 3000), (500, 2000), (2000, 300)])
def test_detailed_polygon_with_hole_matches_textbook_ray_casting(n: int, points: int) -> None:
    rng = random.Random(n)
    outer = star(n, 106.0, 16.0, 0.1, 0.3, rng)
    hole = star(max(3, n // 3), 106.0, 16.0, 0.02, 0.09, rng)
    a = area(1, (outer, hole))
    inside = 0
    for _ in range(points):
        lat, lon = rng.uniform(15.65, 16.35), rng.uniform(105.65, 106.35)
        expected = _naive_contains((outer, hole), lon, lat)
        assert a.contains(lat, lon) == expected, (lat, lon)
        inside += expected
    assert inside > points // 20
    for ring in (outer, hole):  # every vertex and every edge midpoint is on the boundary
        for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
            assert a.contains(y1, x1)
            assert a.contains((y1 + y2) / 2, (x1 + x2) / 2)


@pytest.fixture(scope="module")
def tiling() -> tuple[list[CommuneArea], dict[tuple[int, int], int], CommuneLocator]:
    areas, tile_codes = wobbly_tiling(interior=12)  # 52 vertices a tile keeps the test fast
    return areas, tile_codes, CommuneLocator(areas)


def test_tiling_has_one_area_per_commune(tiling) -> None:
    areas, tile_codes, locator = tiling
    assert len(areas) == len(locator) == 3321
    assert len(set(tile_codes.values())) == 3321


def test_tile_centres_are_found(tiling) -> None:
    _areas, tile_codes, locator = tiling
    dx = (VN_LON[1] - VN_LON[0]) / GRID_COLS
    dy = (VN_LAT[1] - VN_LAT[0]) / GRID_ROWS
    for (i, j), code in tile_codes.items():
        lon = VN_LON[0] + (i + 0.5) * dx
        lat = VN_LAT[0] + (j + 0.5) * dy
        assert locator.locate(lat, lon) == code, (i, j)


def test_random_points_match_brute_force(tiling) -> None:
    areas, _tile_codes, locator = tiling
    rng = random.Random(7)
    boxes = [(a.bbox, a) for a in areas]
    for _ in range(1500):
        lat = rng.uniform(VN_LAT[0] - 0.5, VN_LAT[1] + 0.5)
        lon = rng.uniform(VN_LON[0] - 0.5, VN_LON[1] + 0.5)
        candidates = [a for (x0, y0, x1, y1), a in boxes if x0 <= lon <= x1 and y0 <= lat <= y1]
        hits = sorted(a.commune_code for a in candidates if a.contains(lat, lon))
        naive = [a.commune_code for a in candidates if _naive_contains(a.polygons[0], lon, lat)]
        # tiles neither overlap nor leave gaps; outer borders wobble by up to 0.2 of a tile
        if VN_LON[0] + 0.04 < lon < VN_LON[1] - 0.04 and VN_LAT[0] + 0.04 < lat < VN_LAT[1] - 0.04:
            assert len(hits) == 1, (lat, lon)
        elif not (
            VN_LON[0] - 0.04 < lon < VN_LON[1] + 0.04 and VN_LAT[0] - 0.04 < lat < VN_LAT[1] + 0.04
        ):
            assert hits == [], (lat, lon)
        assert len(hits) <= 1, (lat, lon)
        assert hits == naive, (lat, lon)
        assert locator.locate(lat, lon) == (hits[0] if hits else None), (lat, lon)


def test_shared_border_vertices_go_to_the_smallest_code(tiling) -> None:
    areas, _tile_codes, locator = tiling
    rng = random.Random(11)
    shared = 0
    for a in rng.sample(areas, 300):
        ring = a.polygons[0][0]
        lon, lat = ring[rng.randrange(len(ring))]
        owners = [other.commune_code for other in areas if other.contains(lat, lon)]
        assert a.commune_code in owners
        assert len(owners) <= 4  # a grid corner touches four tiles
        shared += len(owners) > 1
        assert locator.locate(lat, lon) == min(owners)
    assert shared > 200  # most vertices lie on a border between two tiles
