"""Benchmark location routing: GeoJSON import, locator build, and locate().

Plain script (not a test):  .venv/bin/python bench/bench_geo.py [--runs N] [--points N]

Builds a synthetic country: Vietnam's bounding box (102-110 E, 8-23.5 N) tiled by
41 x 81 = 3,321 communes whose shared borders are identical zigzags, ~200 vertices per
commune (like real simplified boundaries). Each run times:

- ``parse_geojson`` of the whole FeatureCollection (what an admin import does),
- ``from_geometry_json`` of all 3,321 stored geometries (what start-up does),
- ``CommuneLocator(...)`` (the grid index over polygon bounding boxes),
- ``locate()`` for N random points in the bounding box, twice: the cold pass also builds
  each touched polygon's edge slabs (done lazily, on first lookup); the warm pass is the
  steady state. Median and p99 (and max, warm) per call.

Prints one line per run and the medians over runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bot.domain.geo import CommuneArea, CommuneLocator, parse_geojson

VN_LON = (102.0, 110.0)
VN_LAT = (8.0, 23.5)
COLS, ROWS = 41, 81  # 3,321 tiles
INTERIOR = 49  # points per border between two corners -> 4 * 50 = 200 vertices a tile


def synthetic_geojson(seed: int = 20250701) -> str:
    """A FeatureCollection of 3,321 zigzag tiles with zero-padded string codes."""
    rng = random.Random(seed)
    dx = (VN_LON[1] - VN_LON[0]) / COLS
    dy = (VN_LAT[1] - VN_LAT[0]) / ROWS

    def corner(i: int, j: int) -> list[float]:
        return [VN_LON[0] + i * dx, VN_LAT[0] + j * dy]

    def border(a: list[float], b: list[float], size: float) -> list[list[float]]:
        nx, ny = (0.0, 1.0) if a[1] == b[1] else (1.0, 0.0)
        out = []
        for k in range(1, INTERIOR + 1):
            t = k / (INTERIOR + 1)
            off = 0.2 * size * math.sin(math.pi * t) * rng.uniform(-1.0, 1.0)
            out.append([a[0] + t * (b[0] - a[0]) + nx * off, a[1] + t * (b[1] - a[1]) + ny * off])
        return out

    horizontal = {
        (i, j): border(corner(i, j), corner(i + 1, j), dy)
        for j in range(ROWS + 1)
        for i in range(COLS)
    }
    vertical = {
        (i, j): border(corner(i, j), corner(i, j + 1), dx)
        for j in range(ROWS)
        for i in range(COLS + 1)
    }
    codes = rng.sample(range(1, 100_000), COLS * ROWS)
    features = []
    for j in range(ROWS):
        for i in range(COLS):
            ring = [
                corner(i, j),
                *horizontal[i, j],
                corner(i + 1, j),
                *vertical[i + 1, j],
                corner(i + 1, j + 1),
                *reversed(horizontal[i, j + 1]),
                corner(i, j + 1),
                *reversed(vertical[i, j]),
                corner(i, j),
            ]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"ma_xa": f"{codes[j * COLS + i]:05d}"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    return json.dumps({"type": "FeatureCollection", "features": features})


def one_run(document: str, points: list[tuple[float, float]]) -> dict[str, float]:
    gc.collect()
    t0 = time.perf_counter()
    areas = parse_geojson(document)
    t1 = time.perf_counter()
    stored = [(a.commune_code, a.to_geometry_json()) for a in areas]
    t2 = time.perf_counter()
    restored = [CommuneArea.from_geometry_json(code, text) for code, text in stored]
    t3 = time.perf_counter()
    locator = CommuneLocator(restored)
    t4 = time.perf_counter()
    assert len(locator) == COLS * ROWS
    cold = _time_locate(locator, points)  # first touch of a polygon builds its edge slabs
    warm = _time_locate(locator, points)
    return {
        "parse_s": t1 - t0,
        "to_json_s": t2 - t1,
        "from_json_s": t3 - t2,
        "build_s": t4 - t3,
        "cold_median_us": statistics.median(cold) / 1000,
        "cold_p99_us": cold[int(len(cold) * 0.99)] / 1000,
        "cold_total_s": sum(cold) / 1e9,
        "median_us": statistics.median(warm) / 1000,
        "p99_us": warm[int(len(warm) * 0.99)] / 1000,
        "max_us": warm[-1] / 1000,
    }


def _time_locate(locator: CommuneLocator, points: list[tuple[float, float]]) -> list[int]:
    latencies = []
    found = 0
    clock = time.perf_counter_ns
    for lat, lon in points:
        s = clock()
        code = locator.locate(lat, lon)
        latencies.append(clock() - s)
        found += code is not None
    assert found > 0.98 * len(points)  # only the wobbly outer border leaves gaps
    latencies.sort()
    return latencies


def memory(document: str, points: list[tuple[float, float]]) -> dict[str, float]:
    """Python heap held by the start-up path (tracemalloc): areas + locator, then slabs."""
    stored = [(a.commune_code, a.to_geometry_json()) for a in parse_geojson(document)]
    gc.collect()
    tracemalloc.start()
    restored = [CommuneArea.from_geometry_json(code, text) for code, text in stored]
    locator = CommuneLocator(restored)
    del restored
    gc.collect()
    loaded = tracemalloc.get_traced_memory()[0] / 1e6
    touched = {locator.locate(lat, lon) for lat, lon in points}
    gc.collect()
    warm = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    return {
        "stored_json_mb": sum(len(text) for _, text in stored) / 1e6,
        "locator_mb": loaded,
        "with_slabs_mb": warm,
        "communes_touched": len(touched - {None}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--points", type=int, default=10_000)
    args = parser.parse_args()

    document = synthetic_geojson()
    vertices = sum(len(f["geometry"]["coordinates"][0]) for f in json.loads(document)["features"])
    rng = random.Random(1)
    points = [
        (rng.uniform(VN_LAT[0], VN_LAT[1]), rng.uniform(VN_LON[0], VN_LON[1]))
        for _ in range(args.points)
    ]
    print(
        f"{COLS * ROWS} communes, {vertices:,} vertices ({vertices / (COLS * ROWS):.0f} a "
        f"commune incl. closing), GeoJSON {len(document) / 1e6:.1f} MB, {len(points):,} points"
    )
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.platform()}"
    )
    results = []
    for run in range(1, args.runs + 1):
        r = one_run(document, points)
        results.append(r)
        print(
            f"run {run}: parse {r['parse_s']:.2f} s, to_json {r['to_json_s']:.2f} s, "
            f"from_json {r['from_json_s']:.2f} s, locator {r['build_s']:.2f} s; cold locate "
            f"median {r['cold_median_us']:.1f} us, p99 {r['cold_p99_us']:.0f} us, total "
            f"{r['cold_total_s']:.2f} s; warm locate median {r['median_us']:.1f} us, p99 "
            f"{r['p99_us']:.1f} us, max {r['max_us']:.0f} us"
        )
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"medians over {args.runs} runs:")
    for key, value in med.items():
        print(f"  {key:16s} {value:10.2f}")
    del results
    gc.collect()
    for key, value in memory(document, points).items():
        print(f"  {key:16s} {value:10.1f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS         {peak_mb:10.0f} MB (whole script, incl. the 28 MB document)")


if __name__ == "__main__":
    main()
