"""Benchmark CommuneDirectory.load() and CommuneDirectory.search().

Plain script (not a test):  .venv/bin/python bench/bench_commune_search.py [--rounds N]

Prints the load time (first load includes importing the vietnam-provinces data module; the
second load is the index build alone), then the median and p99 latency of each query over
N rounds, and the overall median / p99 / max. Target: every search < 5 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bot.domain.communes import CommuneDirectory

# Realistic tip-line input: with and without diacritics, typos, province words, old
# provinces and districts, full labels, codes, partial names and junk.
QUERIES: list[str] = [
    "phuc khanh",
    "Phúc Khánh",
    "xa phuc khanh lao cai",
    "Xã Phúc Khánh, Lào Cai",
    "phuc khan",
    "phúc khánh lào cai",
    "phuk khanh",
    "Xã Phúc Khánh, huyện Bảo Yên, tỉnh Lào Cai",
    "phuc khanh yen bai",
    "2998",
    "tan an",
    "Tân An",
    "tan an nghe an",
    "phuong tan an tp can tho",
    "tan an long an",
    "hoan kiem",
    "hoam kiem",
    "Phường Hoàn Kiếm, Hà Nội",
    "p. ben thanh, q.1, tp.hcm",
    "ben thanh tphcm",
    "phuong sai gon",
    "thanh xuan",
    "thanh xuan ha noi",
    "cau giay",
    "cau giây hn",
    "long bien",
    "phu quoc",
    "dac khu phu quoc",
    "con dao",
    "vung tau",
    "nha trang",
    "da lat",
    "phuong xuan huong da lat",
    "buon ma thuot",
    "buon me thuot",
    "hoi an",
    "my son",
    "sa pa",
    "sapa",
    "mdrak",
    "ea hleo",
    "chan may lang co",
    "quoc tu giam",
    "ha giang 1",
    "binh minh",
    "binh minh vinh long",
    "hoa binh",
    "xa hoa binh phu tho",
    "tinh lao cai",
    "phuong 1 bao loc lam dong",
    "thi tran phong tho",
    "vinh yen",
    "qwertyuiop",
    "!!!",
    "x",
    "nguyen van a 0912345678",  # not a place at all
    "toi muon bao cao vu trom cap o xa phuc khanh",  # a sentence instead of a name
]


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="timed runs per query")
    parser.add_argument("--quiet", action="store_true", help="only print the summary")
    args = parser.parse_args()

    started = time.perf_counter()
    CommuneDirectory.load()
    first_load = time.perf_counter() - started
    started = time.perf_counter()
    directory = CommuneDirectory.load()
    second_load = time.perf_counter() - started

    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"load: first {first_load * 1000:.0f} ms (incl. data import), "
        f"second {second_load * 1000:.0f} ms (index build only)"
    )

    for query in QUERIES:  # warm-up
        directory.search(query)

    gc.disable()  # measure the search, not the collector
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    for _ in range(args.rounds):
        for query in QUERIES:
            t0 = time.perf_counter()
            directory.search(query)
            per_query[query].append((time.perf_counter() - t0) * 1000)
    gc.enable()

    if not args.quiet:
        print(f"\n{'query':50} {'median ms':>9} {'p99 ms':>8}  top hit")
    all_times: list[float] = []
    medians: list[float] = []
    for query, times in per_query.items():
        times.sort()
        all_times += times
        median = statistics.median(times)
        medians.append(median)
        if not args.quiet:
            hits = directory.search(query, limit=1)
            top = f"{hits[0].label()} ({hits[0].score:.0f})" if hits else "-"
            print(f"{query[:50]:50} {median:9.3f} {percentile(times, 0.99):8.3f}  {top}")

    all_times.sort()
    worst = max(per_query, key=lambda q: statistics.median(per_query[q]))
    worst_p99 = max(per_query, key=lambda q: percentile(per_query[q], 0.99))
    print(
        f"\n{len(QUERIES)} queries x {args.rounds} rounds: "
        f"median {statistics.median(all_times):.3f} ms, "
        f"p99 {percentile(all_times, 0.99):.3f} ms, max {all_times[-1]:.3f} ms\n"
        f"slowest median: {worst!r} {max(medians):.3f} ms; "
        f"slowest p99: {worst_p99!r} {percentile(per_query[worst_p99], 0.99):.3f} ms; "
        f"queries with median >= 5 ms: {sum(m >= 5 for m in medians)}"
    )

    started = time.perf_counter()
    rounds = 0
    for _ in range(args.rounds):
        for query in ("lao cai", "tp hcm", "ha noi", "yen bai", "qwerty"):
            directory.search_provinces(query)
            rounds += 1
    print(f"search_provinces: mean {(time.perf_counter() - started) * 1000 / rounds:.3f} ms")


if __name__ == "__main__":
    main()
