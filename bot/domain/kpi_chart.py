"""The /stats chart, drawn with Pillow (already a dependency; no plotting library): daily
tips received vs processed (bars, by receipt day) and the share on time (a line against a
100% line). Vietnamese labels in the bundled DejaVu subset (bot/assets), local (ICT) dates.

Sized for a phone: 1280 x 960 px (Telegram keeps photos up to 1280 px on the long side),
text at least 24 px. CPU-bound: callers run it off the event loop (``asyncio.to_thread``);
timings in docs/benchmarks.md ("KPIs and /stats").
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from importlib import resources

from PIL import Image, ImageDraw, ImageFont

from bot.domain.kpi import DayCounts

WIDTH, HEIGHT = 1280, 960
MARGIN_LEFT, MARGIN_RIGHT = 110, 40
BACKGROUND = (255, 255, 255)
INK = (33, 37, 41)
GRID = (222, 226, 230)
RECEIVED = (66, 133, 244)
PROCESSED = (52, 168, 83)
ON_TIME = (251, 140, 0)
TARGET = (219, 68, 55)
_FONT_FILES = {"regular": "DejaVuSans-subset.ttf", "bold": "DejaVuSans-Bold-subset.ttf"}
_FONT_DATA: dict[str, bytes] = {}


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """The chart's words, already translated (police groups: Vietnamese)."""

    title: str
    subtitle: str
    received: str
    processed: str
    on_time: str
    target: str  # the 100% line
    no_tips: str


def _font(kind: str, size: int) -> ImageFont.FreeTypeFont:
    data = _FONT_DATA.get(kind)
    if data is None:
        data = _FONT_DATA[kind] = resources.files("bot.assets").joinpath(
            _FONT_FILES[kind]).read_bytes()
    # a face per render: FreeType faces are not shared between threads
    return ImageFont.truetype(io.BytesIO(data), size, layout_engine=ImageFont.Layout.BASIC)


def _nice_step(top: int) -> int:
    """A y-axis step giving 4-6 gridlines up to ``top``."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top / step <= 5:
            return step
    return max(1, top // 5)


def _label_every(days: int) -> int:
    return 1 if days <= 10 else 2 if days <= 16 else 3 if days <= 24 else 5 if days <= 40 else 7


def render_chart(daily: list[DayCounts], labels: ChartLabels) -> bytes:
    """A PNG of the period's days (one bar pair per day, one point per day with tips)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title, text, small = _font("bold", 38), _font("regular", 26), _font("regular", 24)
    draw.text((MARGIN_LEFT - 70, 24), labels.title, font=title, fill=INK)
    draw.text((MARGIN_LEFT - 70, 76), labels.subtitle, font=text, fill=INK)

    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    bars_top, bars_bottom = 190, 560
    line_top, line_bottom = 660, 880
    count = max(len(daily), 1)
    slot = (right - left) / count

    # legend
    x = left
    for colour, name in ((RECEIVED, labels.received), (PROCESSED, labels.processed)):
        draw.rectangle((x, 134, x + 28, 162), fill=colour)
        draw.text((x + 38, 132), name, font=text, fill=INK)
        x += 48 + int(draw.textlength(name, font=text)) + 30

    # panel 1: received vs processed per day
    top = max([d.counts.received for d in daily] + [1])
    step = _nice_step(top)
    axis_top = max(step, -(-top // step) * step)
    for value in range(0, axis_top + 1, step):
        y = bars_bottom - (bars_bottom - bars_top) * value / axis_top
        draw.line((left, y, right, y), fill=GRID, width=2)
        draw.text((left - 14, y), str(value), font=small, fill=INK, anchor="rm")
    bar = max(2.0, slot * 0.36)
    for index, day in enumerate(daily):
        centre = left + slot * (index + 0.5)
        for offset, value, colour in ((-bar, day.counts.received, RECEIVED),
                                      (0.0, day.counts.processed, PROCESSED)):
            if value:
                height = (bars_bottom - bars_top) * value / axis_top
                draw.rectangle((centre + offset, bars_bottom - height,
                                centre + offset + bar - 1, bars_bottom), fill=colour)
    draw.line((left, bars_bottom, right, bars_bottom), fill=INK, width=2)
    every = _label_every(len(daily))
    for index, day in enumerate(daily):
        if index % every == 0 or (index == len(daily) - 1 and len(daily) <= 10):
            centre = left + slot * (index + 0.5)
            draw.text((centre, bars_bottom + 10), _day(day.day), font=small, fill=INK,
                      anchor="mt")

    # panel 2: on-time share per day against the 100% target
    draw.text((MARGIN_LEFT - 70, line_top - 62), labels.on_time, font=text, fill=ON_TIME)
    target_label = labels.target
    draw.text((right, line_top - 62), target_label, font=text, fill=TARGET, anchor="ra")
    for value in (0, 50, 100):
        y = line_bottom - (line_bottom - line_top) * value / 100
        draw.line((left, y, right, y), fill=GRID, width=2)
        draw.text((left - 14, y), f"{value}%", font=small, fill=INK, anchor="rm")
    _dashed(draw, left, line_top, right, TARGET)
    points = [
        (left + slot * (index + 0.5),
         line_bottom - (line_bottom - line_top) * day.counts.on_time / day.counts.received)
        for index, day in enumerate(daily) if day.counts.received
    ]
    if len(points) > 1:
        draw.line(points, fill=ON_TIME, width=5, joint="curve")
    for x_point, y_point in points:
        draw.ellipse((x_point - 7, y_point - 7, x_point + 7, y_point + 7), fill=ON_TIME)
    draw.line((left, line_bottom, right, line_bottom), fill=INK, width=2)
    for index, day in enumerate(daily):
        if index % every == 0 or (index == len(daily) - 1 and len(daily) <= 10):
            centre = left + slot * (index + 0.5)
            draw.text((centre, line_bottom + 10), _day(day.day), font=small, fill=INK,
                      anchor="mt")
    if not any(day.counts.received for day in daily):
        draw.text((WIDTH / 2, (bars_top + bars_bottom) / 2), labels.no_tips, font=text,
                  fill=INK, anchor="mm")

    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _day(day: date) -> str:
    return f"{day:%d/%m}"


def _dashed(draw: ImageDraw.ImageDraw, left: float, y: float, right: float,
            colour: tuple[int, int, int]) -> None:
    x = left
    while x < right:
        draw.line((x, y, min(x + 18, right), y), fill=colour, width=4)
        x += 30
