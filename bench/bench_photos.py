"""Benchmark the photo sanitiser against the naive Pillow recipe.

    .venv/bin/python bench/bench_photos.py [--runs 15] [--extra]

Main case: tests/fixtures/photos/jolla.jpg (3264x2448, 8 MP) -> long side 2560.
"naive" = full decode at full size -> ImageOps.exif_transpose -> resize to 2560 (LANCZOS)
-> save JPEG q85: what one writes first, and it does not even strip metadata reliably.
--extra also times a 1280 px output (JPEG draft() at 1/2 kicks in) and a generated
48 MP JPEG (8064x6048, phone "full resolution" mode; draft() at 1/2 before resizing).

Peak memory of one call is measured in a fresh child process: the growth of the
process's peak RSS (ru_maxrss, covers Pillow's C pixel buffers) and tracemalloc's peak
(Python allocations only: the raw pixel and JPEG bytes objects, not Pillow's buffers).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
JOLLA = ROOT / "tests" / "fixtures" / "photos" / "jolla.jpg"


def _sanitiser() -> Callable[..., object]:
    try:
        from bot.domain.photos import sanitise_photo
    except ImportError:  # not installed in editable mode: run from a checkout
        sys.path.insert(0, str(ROOT))
        from bot.domain.photos import sanitise_photo
    return sanitise_photo


def naive(data: bytes, max_side: int = 2560) -> bytes:
    im = Image.open(io.BytesIO(data))
    im.load()
    im = ImageOps.exif_transpose(im)
    scale = max_side / max(im.size)
    if scale < 1:
        size = (round(im.width * scale), round(im.height * scale))
        im = im.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def timings(
    funcs: tuple[Callable[[], object], ...], runs: int, warmup: int = 3
) -> list[list[float]]:
    """Time each function `runs` times, interleaved (a, b, a, b...) so that both see the
    same background load on a shared machine."""
    for _ in range(warmup):
        for func in funcs:
            func()
    result: list[list[float]] = [[] for _ in funcs]
    for _ in range(runs):
        for index, func in enumerate(funcs):
            started = time.perf_counter()
            func()
            result[index].append((time.perf_counter() - started) * 1000)
    return result


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def compare(
    label: str, data: bytes, max_side: int, runs: int, min_side: int | None = None
) -> tuple[float, float]:
    sanitise = _sanitiser()
    options = {"max_side": max_side} | ({"min_side": min_side} if min_side else {})
    fast, slow = timings(
        (lambda: sanitise(data, **options), lambda: naive(data, max_side)), runs
    )
    fast_median, slow_median = statistics.median(fast), statistics.median(slow)
    print(f"{label}")
    print(
        f"  sanitise_photo  median {fast_median:7.1f} ms  p90 {p90(fast):7.1f} ms  "
        f"min {min(fast):7.1f} ms"
    )
    print(
        f"  naive recipe    median {slow_median:7.1f} ms  p90 {p90(slow):7.1f} ms  "
        f"min {min(slow):7.1f} ms"
    )
    print(f"  ratio (naive / sanitise, medians) {slow_median / fast_median:.2f}x")
    return fast_median, slow_median


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(which: str) -> None:
    """Run in a fresh process: one call, report peak RSS growth and tracemalloc peak."""
    data = JOLLA.read_bytes()
    sanitise = _sanitiser()
    func = (lambda: sanitise(data)) if which == "sanitise" else (lambda: naive(data))
    # ru_maxrss survives fork+exec on Linux (the child starts with the parent's peak), so
    # prefer the per-process VmHWM, reset to the current RSS via /proc/self/clear_refs.
    baseline = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        use_hwm = baseline is not None
    except OSError:
        use_hwm = False
    if not use_hwm:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    func()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = _status_kib("VmHWM") if use_hwm else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{(peak - (baseline or 0)) / 1024:.1f} {traced_peak / 2**20:.1f}")


def memory(which: str) -> tuple[float, float]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--memory-child", which],
        capture_output=True,
        text=True,
        check=True,
    )
    rss, traced = done.stdout.split()
    return float(rss), float(traced)


def generated_48mp() -> bytes:
    with Image.open(JOLLA) as im:
        big = im.resize((8064, 6048), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--extra", action="store_true", help="also 1280 px and 48 MP cases")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory children")
    parser.add_argument("--memory-child", choices=["sanitise", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    print(
        f"python {platform.python_version()}, Pillow {Image.__version__}, "
        f"{platform.machine()}, {cpus} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    data = JOLLA.read_bytes()
    compare(f"jolla.jpg 3264x2448, default policy (half-scale decode -> 1632x1224), "
            f"{args.runs} runs", data, 2560, args.runs)
    compare(f"jolla.jpg 3264x2448 -> 2560x1920 (min_side=2560: full decode + resize), "
            f"{args.runs} runs", data, 2560, args.runs, min_side=2560)
    for which in () if args.no_memory else ("sanitise", "naive"):
        rss, traced = memory(which)
        print(f"  peak memory, one {which} call: +{rss:.0f} MiB RSS, {traced:.0f} MiB traced")
    if args.extra:
        compare(f"jolla.jpg -> 1280x960 (draft 1/2), {args.runs} runs", data, 1280, args.runs)
        big = generated_48mp()
        runs = max(3, args.runs // 3)
        compare(f"generated 8064x6048 (48 MP) JPEG -> 2560, {runs} runs", big, 2560, runs)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
