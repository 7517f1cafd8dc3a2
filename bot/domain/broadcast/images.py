"""The built-in campaigns' pictures, drawn here with Pillow (no downloaded art): a vertical
gradient, a five-pointed star, the date and two lines of Vietnamese text in the bundled
DejaVu Sans subset (full Vietnamese coverage, see bot/assets/README-fonts.txt)."""

from __future__ import annotations

import io
import math
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from bot.domain.posters import unsupported_characters

WIDTH, HEIGHT = 1280, 720
MAX_PHOTO_SIDE = 2560
MAX_PHOTO_PIXELS = 64 * 1024 * 1024  # as for residents' pictures (a "tiny PNG" bomb)
_BOLD = "DejaVuSans-Bold-subset.ttf"


@cache
def _font_bytes() -> bytes:
    return resources.files("bot.assets").joinpath(_BOLD).read_bytes()


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(_font_bytes()), size,
                              layout_engine=ImageFont.Layout.BASIC)


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * 0.382
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def render_campaign_image(design: dict[str, Any]) -> bytes:
    """A 1280x720 JPEG from a campaign's ``image`` entry (colours, date, lines)."""
    lines = [unicodedata.normalize("NFC", str(line)) for line in design.get("lines", [])]
    date = str(design.get("date", ""))
    missing = unsupported_characters("".join(lines) + date)
    if missing:
        raise ValueError(f"the campaign font cannot draw {sorted(missing)}")
    top, bottom = _rgb(design["top"]), _rgb(design["bottom"])
    accent = _rgb(design.get("accent", "#ffffff"))
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    for y in range(HEIGHT):
        t = y / (HEIGHT - 1)
        draw.line([(0, y), (WIDTH, y)], fill=tuple(
            round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    for k in range(6):  # soft rays behind the star
        angle = k * math.pi / 6
        dx, dy = math.cos(angle) * 900, math.sin(angle) * 900
        ray = tuple(min(c + 22, 255) for c in top)
        draw.line([(300 - dx, 360 - dy), (300 + dx, 360 + dy)], fill=ray, width=3)
    draw.polygon(_star(300, 330, 200), fill=accent)
    draw.ellipse([(60, 600), (540, 640)], fill=tuple(max(c - 30, 0) for c in bottom))
    date_font = _font(150)
    draw.text((600, 140), date, font=date_font, fill=accent)
    size = 56
    for line in lines:  # shrink until the longest line fits on the right half
        while size > 24 and _font(size).getlength(line) > WIDTH - 640:
            size -= 2
    text_font = _font(size)
    y = 360
    for line in lines:
        draw.text((600, y), line, font=text_font, fill=(255, 255, 255))
        y += int(size * 1.35)
    draw.rectangle([(600, y + 20), (1180, y + 28)], fill=accent)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, optimize=True)
    return out.getvalue()


def clean_announcement_photo(data: bytes) -> bytes:
    """A custom campaign's photo rebuilt from pixels (no metadata), at most 2560 px on the
    long side, JPEG q85. ValueError if it is not a picture (or a decompression bomb)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                raise ValueError("the picture is too large")
            picture = image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"not a readable picture ({error})") from None
    picture.thumbnail((MAX_PHOTO_SIDE, MAX_PHOTO_SIDE))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()
