"""Peak memory and CPU of the photo path under a picture flood (run by hand, not a test).

    .venv/bin/python bench/bench_picture_flood.py [--picture bomb|budget|jolla] [--count 13]
    .venv/bin/python bench/bench_picture_flood.py --root /path/to/other/checkout

One process, like the ``world`` test fixture: the bot (``TiplineRuntime``, SQLite, long
polling) and the local Bot API sandbox. A resident writes a tip up to the attachments step,
then sends ``--count`` pictures as files at once; another resident sends /help right after.
Measured from just before the first picture until the last reply: the growth of this
process's RSS (VmRSS sampled every 5 ms in a thread) and of its high-water mark (VmHWM),
CPU time (user + system, all threads, sandbox included), wall time, and how long the
/help answer took. Pictures:

* ``bomb``: 7071x7071 RGBA PNG of zeros, 190 KB on the wire, 200 MB of pixels (the
  issue's attack);
* ``budget``: 4000x4000 RGB PNG of zeros, 64,000,000 bytes of pixels, just under the
  64 MiB decode budget (the worst a picture may cost now);
* ``jolla``: tests/fixtures/photos/jolla.jpg, an 8 MP phone photo;
* ``heic``: tests/fixtures/photos/IMG_5195.HEIC, an 8.5 MP iPhone HEIC;
* ``jpeg200``: a 16320x12240 (200 MP) baseline JPEG of flat grey, 3 MB.

``--root`` runs the same flood against another checkout (e.g. an export of an older
commit), which must have the same sandbox and test fixtures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnop"  # noqa: S105 - a fake key
MB = 1024 * 1024


def png_of_zeros(width: int, height: int, channels: int) -> bytes:
    colour_type = {3: 2, 4: 6}[channels]

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data)
        )

    row = bytes(1 + width * channels)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def flat_jpeg(width: int, height: int) -> bytes:
    """As tests/test_photos.flat_jpeg: a baseline 4:2:0 JPEG of flat grey."""
    import io

    from PIL import Image

    small = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(small, "JPEG", subsampling="4:2:0")
    data = small.getvalue()
    sos = data.index(b"\xff\xda")
    header = bytearray(data[: sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")])
    sof = header.index(b"\xff\xc0")
    header[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    mcu = bytes([0b00101000, 0b10100010, 0b10001010, 0b00000000])
    return bytes(header) + mcu * ((width // 16) * (height // 16)) + b"\xff\xd9"


def status(field: str) -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def flood(
    picture: bytes, name: str, mime: str, count: int
) -> tuple[dict[str, float], list[str]]:
    from bot.app import BotEndpoint, TiplineRuntime
    from bot.sandbox import BotApiSandbox, RateLimits
    from bot.sandbox_mode import link_demo_groups, seed_demo
    from tests.conftest import FAST_PRIVATE_BURST, World, make_settings
    from tests.test_intake_bot import write_tip

    sandbox = BotApiSandbox(limits=RateLimits(private_burst=FAST_PRIVATE_BURST + 5))
    await sandbox.start()
    with tempfile.TemporaryDirectory() as tmp:
        demo = seed_demo(sandbox)
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp}/tipline.db", Path(tmp), admin_ids=[demo.admin.id],
            ops_chat_id=demo.ops_group.id, telegram_private_burst=FAST_PRIVATE_BURST,
        )
        runtime = TiplineRuntime(settings, BotEndpoint(sandbox.token, sandbox.url),
                                 SECRET_KEY.encode())
        try:
            await runtime.start()
            assert runtime.services is not None
            await link_demo_groups(runtime.services.linking, demo)
            world = World(sandbox, runtime, demo)
            resident, other = demo.residents
            await write_tip(world, resident)
            before = len(sandbox.bot_messages(resident.id))
            peak, stop = [status("VmRSS")], threading.Event()

            def sample() -> None:
                while not stop.wait(0.005):
                    peak[0] = max(peak[0], status("VmRSS"))

            sampler = threading.Thread(target=sample, daemon=True)
            rss0, hwm0, cpu0 = status("VmRSS"), status("VmHWM"), cpu_seconds()
            sampler.start()
            started = time.perf_counter()
            for _ in range(count):
                await sandbox.send_document(resident.id, picture, file_name=name,
                                            mime_type=mime)
            asked = time.perf_counter()
            await world.exchange(other, "/help", timeout=120)
            help_seconds = time.perf_counter() - asked
            # done when every picture is refused or attached, and the album acknowledged
            pseudonym = runtime.services.pseudonyms.resident("tg", resident.id)
            deadline = time.perf_counter() + 900
            while time.perf_counter() < deadline:
                view = await runtime.services.intake.current(pseudonym)
                attached = view.photo_count if view else 0
                texts = [m["text"] for m in sandbox.bot_messages(resident.id)[before:]]
                refused = [text for text in texts if not text.startswith("📷")]
                acked = attached == 0 or any(f" {attached}/10 " in t for t in texts)
                if attached + len(refused) >= count and acked:
                    break
                await asyncio.sleep(0.02)
            wall = time.perf_counter() - started
            stop.set()
            sampler.join()
            return {
                "rss_growth_mb": (max(peak[0], status("VmRSS")) - rss0) / MB,
                "hwm_growth_mb": (status("VmHWM") - hwm0) / MB,
                "cpu_s": cpu_seconds() - cpu0,
                "wall_s": wall,
                "help_s": help_seconds,
                "attached": float(attached),
                "replies": float(len(texts)),
            }, texts
        finally:
            await runtime.stop()
            await sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--picture", choices=["bomb", "budget", "jolla", "heic", "jpeg200"], default="bomb"
    )
    parser.add_argument("--count", type=int, default=13)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    os.chdir(args.root)
    if args.picture == "bomb":
        picture, name, mime = png_of_zeros(7071, 7071, 4), "bomb.png", "image/png"
    elif args.picture == "budget":
        picture, name, mime = png_of_zeros(4000, 4000, 3), "budget.png", "image/png"
    elif args.picture == "jpeg200":
        picture, name, mime = flat_jpeg(16320, 12240), "200mp.jpg", "image/jpeg"
    elif args.picture == "heic":
        picture = (args.root / "tests/fixtures/photos/IMG_5195.HEIC").read_bytes()
        name, mime = "IMG_5195.HEIC", "image/heic"
    else:
        picture = (args.root / "tests/fixtures/photos/jolla.jpg").read_bytes()
        name, mime = "jolla.jpg", "image/jpeg"
    result, texts = asyncio.run(flood(picture, name, mime, args.count))
    print(f"root {args.root}  picture {args.picture} ({len(picture) / 1024:.0f} KB) "
          f"x {args.count}  cores {os.cpu_count()}  load {os.getloadavg()[0]:.1f}")
    for key, value in result.items():
        print(f"  {key:14} {value:8.2f}")
    summary: dict[str, int] = {}
    for text in texts:
        summary[text[:60]] = summary.get(text[:60], 0) + 1
    for text, times in summary.items():
        print(f"  {times:3} x {text}")


if __name__ == "__main__":
    main()
