"""Printable QR posters that lead residents to their commune's tip form.

Commune police print the poster (A4, portrait) and put it up at the commune hall and the
village halls. Scanning the QR code opens the bot with a deep link that carries the commune
code (``https://t.me/<bot>?start=c<code>``), so the resident lands directly in the tip form
of that commune. The link is also printed as text under the code for people who cannot
scan.

Layout, top to bottom, everything centred: a red band with the title ("HÒM THƯ AN NINH"),
"CÔNG AN XÃ ..." and the province, the QR code (error correction Q, 4-module quiet zone,
integer module size so every module has crisp edges), the link, and the instruction lines.
Text is wrapped (balanced, so a wrapped title does not leave one word alone) and shrunk
to fit the page.

The page is rendered once as a 1240x1754 RGB bitmap (A4 at 150 dpi). The PNG says
150 dpi, so it prints at A4; the PDF is a one-page A4 document that embeds the very same
pixels losslessly (the PNG's compressed data, which PDF's Flate filter reads as is).

Fonts: subsets of DejaVu Sans (Vietnamese coverage) shipped in ``bot/assets`` with their
licence, so rendering does not depend on the fonts of the machine. Text is NFC-normalised
(decomposed diacritics as typed on some phones become the precomposed letters the font
has) and text the fonts cannot draw is refused with :class:`ValueError` rather than
printed as empty boxes; :func:`unsupported_characters` lets callers check custom text
first.

Pure domain code: no Telegram imports, no I/O besides reading the bundled fonts.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import segno
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_TITLE",
    "Poster",
    "deep_link",
    "render_poster",
    "unsupported_characters",
]

DEFAULT_TITLE = "HÒM THƯ AN NINH"
# "{commune}" is replaced by the commune's name as it reads inside a sentence
# ("xã Phúc Khánh", "đặc khu Phú Quốc").
DEFAULT_INSTRUCTIONS: tuple[str, ...] = (
    "Quét mã QR bằng điện thoại để gửi tin báo về an ninh, trật tự cho Công an {commune}.",
    "Danh tính người báo tin được giữ bí mật. Trường hợp khẩn cấp, gọi ngay 113.",
)

# Telegram usernames: 5-32 characters, Latin letters, digits and underscores.
_USERNAME = re.compile(r"[A-Za-z0-9_]{5,32}")
# Division-type words that are capitalised at the start of a name ("Xã Phúc Khánh") but
# written in lower case inside a sentence ("Công an xã Phúc Khánh").
_DIVISION_PREFIXES = ("đặc khu ", "phường ", "xã ")

# --- page geometry (pixels at 150 dpi; 1 mm = 5.9 px) ---------------------------------
DPI = 150
PAGE_WIDTH = 1240  # 210 mm
PAGE_HEIGHT = 1754  # 297 mm
_MARGIN = 72  # ~12 mm: outside what office printers cannot print
_CONTENT_WIDTH = PAGE_WIDTH - 2 * _MARGIN
_BAND_PAD_X = 44
_QR_MAX_SIDE = 780  # QR including its quiet zone; ~13 cm
_QR_MIN_MODULE = 6  # px; 1 mm modules still scan from a photo of the page
_QR_BORDER = 4  # quiet zone, in modules (the QR standard's minimum)
_QR_FRAME = 6  # red frame drawn outside the quiet zone
_MIN_GAP = 32  # between the groups of the page

# --- colours ---------------------------------------------------------------------------
_WHITE = (255, 255, 255)
_RED = (176, 18, 24)
_GOLD = (255, 214, 10)
_INK = (24, 24, 24)
_GREY = (68, 68, 68)

# --- fonts -----------------------------------------------------------------------------
_REGULAR = "DejaVuSans-subset.ttf"
_BOLD = "DejaVuSans-Bold-subset.ttf"
_MONO = "DejaVuSansMono-Bold-subset.ttf"
_FONT_DATA: dict[str, bytes] = {}
# (font file, character) -> the font has a glyph for it. Filled lazily; dict operations
# are atomic, so concurrent renders (asyncio.to_thread) at worst compute an entry twice.
_GLYPH_CACHE: dict[tuple[str, str], bool] = {}
_PROBE_SIZE = 24
_NOTDEF_PROBE = "\ue000"  # private use: in no subset, so it draws the .notdef box


def deep_link(bot_username: str, commune_code: int) -> str:
    """Return the Telegram deep link that opens the bot's tip form for one commune.

    >>> deep_link("TiplineBot", 2998)
    'https://t.me/TiplineBot?start=c2998'

    A leading "@" on the username is accepted and dropped. Raises :class:`ValueError` for
    a username that is not 5-32 of ``[A-Za-z0-9_]`` or a commune code that is not a
    positive integer.
    """
    username = bot_username.removeprefix("@") if isinstance(bot_username, str) else ""
    if not _USERNAME.fullmatch(username):
        raise ValueError(f"invalid Telegram bot username: {bot_username!r}")
    if isinstance(commune_code, bool) or not isinstance(commune_code, int) or commune_code <= 0:
        raise ValueError(f"commune code must be a positive integer, got {commune_code!r}")
    return f"https://t.me/{username}?start=c{commune_code}"


@dataclass(frozen=True, slots=True)
class Poster:
    """A rendered poster: the same A4 page as a 150-dpi PNG (1240x1754) and as a PDF."""

    png: bytes = field(repr=False)
    pdf: bytes = field(repr=False)


def unsupported_characters(text: str) -> set[str]:
    """Return the characters of ``text`` that the poster fonts cannot draw.

    The text is normalised the way :func:`render_poster` normalises it first (NFC,
    whitespace collapsed, invisible control/format characters dropped). Vietnamese, and
    Latin script in general, is fully supported; emoji, CJK and the like are not.
    """
    return _missing(_clean(text), (_REGULAR, _BOLD))


def render_poster(
    *,
    link: str,
    commune_name: str,
    province_name: str,
    title: str = DEFAULT_TITLE,
    instructions: Sequence[str] = DEFAULT_INSTRUCTIONS,
) -> Poster:
    """Render the printable poster for one commune.

    ``link`` is what the QR code encodes, normally :func:`deep_link`'s result; it is also
    printed (without "https://") for typing in. ``commune_name`` is the official name
    ("Xã Phúc Khánh"), ``province_name`` is printed as given ("Tỉnh Lào Cai").
    "{commune}" in an instruction line is replaced by the commune name as it reads in a
    sentence ("xã Phúc Khánh").

    Raises :class:`ValueError` for an empty or non-ASCII link, an empty commune name, text
    the fonts cannot draw (see :func:`unsupported_characters`), or more text than fits on
    the page next to a scannable QR code.

    CPU-bound (~0.2 s): from async code call it via ``asyncio.to_thread``; concurrent calls
    are safe.
    """
    if isinstance(instructions, str):  # one line passed as a plain string
        instructions = (instructions,)
    link = link.strip() if isinstance(link, str) else ""
    if not link or not link.isascii() or not link.isprintable() or " " in link:
        raise ValueError(f"link must be a non-empty ASCII URL without spaces, got {link!r}")
    commune = _clean(commune_name)
    if not commune:
        raise ValueError("commune name is empty")
    in_sentence = _in_sentence(commune)
    title_text = _clean(title)
    org_text = f"Công an {in_sentence}".upper()
    province_text = _clean(province_name)
    paragraphs = [_clean(line.replace("{commune}", in_sentence)) for line in instructions]
    paragraphs = [p for p in paragraphs if p]

    missing = _missing(title_text + org_text, (_BOLD,))
    missing |= _missing(" ".join([province_text, *paragraphs]), (_REGULAR,))
    if missing:
        shown = " ".join(sorted(missing))
        raise ValueError(f"the poster fonts cannot draw these characters: {shown}")

    qr = segno.make_qr(link, error="q", boost_error=True)
    page = _layout(
        qr=qr,
        link_text=link.removeprefix("https://"),
        title=title_text,
        org=org_text,
        province=province_text,
        paragraphs=paragraphs,
    )
    png = _encode_png(page)
    pdf_title = f"{title_text} - Công an {in_sentence}" if title_text else org_text
    return Poster(png=png, pdf=_png_to_pdf(png, page.size, title=pdf_title))


# --- text helpers ----------------------------------------------------------------------


def _clean(text: str) -> str:
    """NFC-normalise, drop invisible control/format characters, collapse whitespace."""
    text = unicodedata.normalize("NFC", text)
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    return " ".join("".join(kept).split())


def _in_sentence(name: str) -> str:
    """ "Xã Phúc Khánh" -> "xã Phúc Khánh"; names without a division word stay as they are."""
    lowered = name.lower()
    for prefix in _DIVISION_PREFIXES:
        if lowered.startswith(prefix):
            return prefix + name[len(prefix) :]
    return name


def _font_data(name: str) -> bytes:
    data = _FONT_DATA.get(name)
    if data is None:
        data = resources.files("bot.assets").joinpath(name).read_bytes()
        _FONT_DATA[name] = data
    return data


class _Fonts:
    """Font objects for one render (FreeType faces are not shared between threads)."""

    def __init__(self) -> None:
        self._fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def get(self, name: str, size: int) -> ImageFont.FreeTypeFont:
        key = (name, size)
        font = self._fonts.get(key)
        if font is None:
            # BASIC layout: the same rendering with or without libraqm on the machine.
            # NFC text needs no shaping: every Vietnamese letter is one precomposed glyph.
            font = ImageFont.truetype(
                io.BytesIO(_font_data(name)), size, layout_engine=ImageFont.Layout.BASIC
            )
            self._fonts[key] = font
        return font


def _glyph_bitmap(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    left, top, right, bottom = (int(v) for v in font.getbbox(char))
    image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(image).text((-left, -top), char, font=font, fill=255)
    return image.size, image.tobytes()


def _missing(text: str, faces: Sequence[str]) -> set[str]:
    """Characters of ``text`` that draw as the .notdef box in any of ``faces``."""
    missing: set[str] = set()
    chars = set(text) - {" "}
    for face in faces:
        todo = [ch for ch in chars if (face, ch) not in _GLYPH_CACHE]
        if todo:
            font = ImageFont.truetype(
                io.BytesIO(_font_data(face)), _PROBE_SIZE, layout_engine=ImageFont.Layout.BASIC
            )
            notdef = _glyph_bitmap(font, _NOTDEF_PROBE)
            for ch in todo:
                _GLYPH_CACHE[(face, ch)] = _glyph_bitmap(font, ch) != notdef
        missing.update(ch for ch in chars if not _GLYPH_CACHE[(face, ch)])
    return missing


def _wrap_greedy(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while len(word) > 1 and font.getlength(word) > width:  # longer than a line: cut it
            cut = max(
                (i for i in range(1, len(word)) if font.getlength(word[:i]) <= width),
                default=1,
            )
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Wrap to ``width`` with lines of similar length (centred text looks even)."""
    lines = _wrap_greedy(text, font, width)
    if len(lines) <= 1:
        return lines
    low, high = 1, width  # the narrowest width that still needs no more lines
    while low < high:
        middle = (low + high) // 2
        if len(_wrap_greedy(text, font, middle)) <= len(lines):
            high = middle
        else:
            low = middle + 1
    return _wrap_greedy(text, font, high)


@dataclass(slots=True)
class _Block:
    """Centred lines of text in one font."""

    lines: list[str]
    font: ImageFont.FreeTypeFont
    fill: tuple[int, int, int]
    above: int = 0  # ink above the first baseline
    below: int = 0  # ink below the last baseline
    pitch: int = 0  # baseline to baseline

    def __post_init__(self) -> None:
        size = int(self.font.size)
        ascent, descent = self.font.getmetrics()
        tops, bottoms = [ascent], [descent]
        for line in self.lines:
            _, top, _, bottom = self.font.getbbox(line, anchor="ls")
            tops.append(-int(top))
            bottoms.append(int(bottom))
        self.above, self.below = max(tops), max(bottoms)
        self.pitch = max(round(size * 1.28), self.above + self.below + round(size * 0.06))

    @property
    def height(self) -> int:
        return self.above + (len(self.lines) - 1) * self.pitch + self.below

    def draw(self, draw: ImageDraw.ImageDraw, top: int) -> None:
        baseline = top + self.above
        for line in self.lines:
            draw.text(
                (PAGE_WIDTH // 2, baseline), line, font=self.font, fill=self.fill, anchor="ms"
            )
            baseline += self.pitch


def _fit(
    fonts: _Fonts,
    text: str,
    face: str,
    *,
    width: int,
    sizes: range,
    max_lines: int,
    fill: tuple[int, int, int],
) -> _Block:
    """The largest font size in ``sizes`` at which ``text`` wraps into ``max_lines``."""
    for size in sizes:
        font = fonts.get(face, size)
        lines = _wrap(text, font, width)
        if len(lines) <= max_lines:
            break
    return _Block(lines, font, fill)


def _fit_link(fonts: _Fonts, text: str) -> _Block:
    """The link on one line if at all possible; cut anywhere as a last resort."""
    for size in range(48, 21, -2):
        font = fonts.get(_MONO, size)
        if font.getlength(text) <= _CONTENT_WIDTH:
            return _Block([text], font, _INK)
    return _Block(_wrap_greedy(text.replace(" ", ""), font, _CONTENT_WIDTH), font, _INK)


def _fit_paragraphs(fonts: _Fonts, paragraphs: Sequence[str]) -> list[_Block]:
    """All instruction paragraphs in one size, each in at most three lines if possible."""
    blocks: list[_Block] = []
    for size in range(40, 27, -2):
        font = fonts.get(_REGULAR, size)
        blocks = [_Block(_wrap(p, font, _CONTENT_WIDTH), font, _GREY) for p in paragraphs]
        if all(len(b.lines) <= 3 for b in blocks):
            break
    return blocks


# --- page layout -----------------------------------------------------------------------


def _qr_image(qr: segno.QRCode, scale: int) -> Image.Image:
    rows = list(qr.matrix_iter(scale=1, border=_QR_BORDER))
    side = len(rows)
    pixels = bytes(0 if dark else 255 for row in rows for dark in row)
    image = Image.frombytes("L", (side, side), pixels)
    return image.resize((side * scale, side * scale), Image.Resampling.NEAREST).convert("RGB")


def _layout(
    *,
    qr: segno.QRCode,
    link_text: str,
    title: str,
    org: str,
    province: str,
    paragraphs: Sequence[str],
) -> Image.Image:
    fonts = _Fonts()
    band_width = _CONTENT_WIDTH - 2 * _BAND_PAD_X
    title_block = (
        _fit(
            fonts, title, _BOLD, width=band_width, sizes=range(92, 47, -4), max_lines=2, fill=_GOLD
        )
        if title
        else None
    )
    org_block = _fit(
        fonts, org, _BOLD, width=_CONTENT_WIDTH, sizes=range(60, 35, -2), max_lines=2, fill=_RED
    )
    province_block = (
        _fit(
            fonts,
            province,
            _REGULAR,
            width=_CONTENT_WIDTH,
            sizes=range(44, 29, -2),
            max_lines=2,
            fill=_INK,
        )
        if province
        else None
    )
    link_block = _fit_link(fonts, link_text)
    paragraph_blocks = _fit_paragraphs(fonts, paragraphs)

    band_pad = round(float(title_block.font.size) * 0.42) if title_block else 0
    band_height = title_block.height + 2 * band_pad if title_block else 0
    org_gap, link_gap, paragraph_gap = 14, 22, 22
    header_height = org_block.height + (org_gap + province_block.height if province_block else 0)
    footer_height = sum(b.height for b in paragraph_blocks) + paragraph_gap * max(
        len(paragraph_blocks) - 1, 0
    )
    groups = 2 + bool(band_height) + bool(paragraph_blocks)  # the page's stacked groups
    fixed = band_height + header_height + link_gap + link_block.height + footer_height
    room = PAGE_HEIGHT - 2 * _MARGIN - fixed - (groups - 1) * _MIN_GAP - 2 * _QR_FRAME
    modules = int(qr.symbol_size(scale=1, border=_QR_BORDER)[0])
    scale = int(min(room, _QR_MAX_SIDE, _CONTENT_WIDTH)) // modules
    if scale < _QR_MIN_MODULE:
        raise ValueError("too much text for one page: shorten the title or the instructions")
    qr_image = _qr_image(qr, scale)
    qr_height = qr_image.height + 2 * _QR_FRAME
    gap = (PAGE_HEIGHT - 2 * _MARGIN - fixed - qr_height) // (groups - 1)

    page = Image.new("RGB", (PAGE_WIDTH, PAGE_HEIGHT), _WHITE)
    draw = ImageDraw.Draw(page)
    y = _MARGIN
    if title_block:
        draw.rounded_rectangle(
            (_MARGIN, y, PAGE_WIDTH - _MARGIN, y + band_height), radius=28, fill=_RED
        )
        title_block.draw(draw, y + band_pad)
        y += band_height + gap

    org_block.draw(draw, y)
    y += org_block.height
    if province_block:
        province_block.draw(draw, y + org_gap)
        y += org_gap + province_block.height
    y += gap

    qr_left = (PAGE_WIDTH - qr_image.width) // 2
    draw.rounded_rectangle(
        (qr_left - _QR_FRAME, y, qr_left + qr_image.width + _QR_FRAME - 1, y + qr_height - 1),
        radius=24,
        fill=_WHITE,
        outline=_RED,
        width=_QR_FRAME,
    )
    page.paste(qr_image, (qr_left, y + _QR_FRAME))
    y += qr_height + link_gap
    link_block.draw(draw, y)
    y += link_block.height

    if paragraph_blocks:
        y += gap
        for block in paragraph_blocks:
            block.draw(draw, y)
            y += block.height + paragraph_gap
    return page


# --- encoding --------------------------------------------------------------------------


def _encode_png(page: Image.Image) -> bytes:
    buffer = io.BytesIO()
    page.save(buffer, "PNG", dpi=(DPI, DPI))
    return buffer.getvalue()


def _png_idat(png: bytes) -> bytes:
    """The concatenated IDAT data (a zlib stream of PNG-filtered rows) of an RGB8 PNG."""
    position, idat = 8, bytearray()
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        if kind == b"IHDR" and data[8:13] != b"\x08\x02\x00\x00\x00":
            raise ValueError("expected a non-interlaced 8-bit RGB PNG")
        if kind == b"IDAT":
            idat += data
        position += 12 + length
    return bytes(idat)


def _pdf_text(text: str) -> bytes:
    """A PDF text string (UTF-16BE with BOM, hex) for the document information."""
    return b"<" + ("\ufeff" + text).encode("utf-16-be").hex().upper().encode() + b">"


def _png_to_pdf(png: bytes, size: tuple[int, int], *, title: str) -> bytes:
    """A one-page A4 PDF showing the PNG's pixels, without re-encoding them."""
    width, height = size
    page_w, page_h = 595.276, 841.89  # A4 in points
    image = _png_idat(png)
    content = f"q {page_w} 0 0 {page_h} 0 0 cm /Im0 Do Q".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w} {page_h}] "
            "/Resources << /XObject << /Im0 4 0 R >> /ProcSet [/PDF /ImageC] >> "
            "/Contents 5 0 R >>"
        ).encode(),
        (
            f"<< /Type /XObject /Subtype /Image /Width {width} /Height {height} "
            "/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode "
            f"/DecodeParms << /Predictor 15 /Colors 3 /BitsPerComponent 8 /Columns {width} >> "
            f"/Length {len(image)} >>\nstream\n"
        ).encode()
        + image
        + b"\nendstream",
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream",
        b"<< /Title " + _pdf_text(title) + b" /Creator (tipline) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
