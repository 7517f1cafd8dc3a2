"""Printable QR posters: deep links, page size, a QR that decodes to the link, the PDF,
and Vietnamese text drawn without missing-glyph boxes."""

from __future__ import annotations

import io
import unicodedata
import zlib
from importlib import resources

import pytest
import segno
from PIL import Image, ImageFilter, PdfParser

from bot.domain import posters
from bot.domain.posters import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TITLE,
    Poster,
    deep_link,
    render_poster,
    unsupported_characters,
)

LINK = "https://t.me/TiplineBot?start=c2998"
# The longest link deep_link can make: a 32-character username and a 6-digit code.
LONGEST_LINK = deep_link("T" * 29 + "bot", 999_999)

# Every Vietnamese letter, each vowel with each of the five tone marks, both cases.
_VOWELS = "aăâeêioôơuưy"
_TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
VIETNAMESE_LETTERS = (
    "".join(unicodedata.normalize("NFC", vowel + tone) for vowel in _VOWELS for tone in _TONES)
    + "bcdđghklmnpqrstvx"
)
VIETNAMESE_LETTERS += VIETNAMESE_LETTERS.upper()


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _decode(image: Image.Image) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    return [result.text for result in zxingcpp.read_barcodes(image)]


@pytest.fixture(scope="module")
def poster() -> Poster:
    return render_poster(link=LINK, commune_name="Xã Phúc Khánh", province_name="Tỉnh Lào Cai")


@pytest.fixture(scope="module")
def crowded_poster() -> Poster:
    """Longest link, long names and title: everything wraps or shrinks, QR still scans."""
    return render_poster(
        link=LONGEST_LINK,
        commune_name="Phường Nguyễn Thái Bình Hưng Thuận Lộc Tiền Hải",
        province_name="Thành phố Hồ Chí Minh",
        title="HÒM THƯ AN NINH TRẬT TỰ KHU DÂN CƯ ẤP BẮC ỄNH ƯƠNG",
    )


# --- deep links ------------------------------------------------------------------------


def test_deep_link_format() -> None:
    assert deep_link("TiplineBot", 2998) == LINK
    assert deep_link("@TiplineBot", 2998) == LINK
    assert deep_link("tip_line_5", 1) == "https://t.me/tip_line_5?start=c1"
    assert deep_link("a" * 32, 31) == f"https://t.me/{'a' * 32}?start=c31"


@pytest.mark.parametrize(
    "username", ["", "abcd", "a" * 33, "tip-line-bot", "tip bot", "tïplinebot", "@", "@@TiplineBot"]
)
def test_deep_link_rejects_bad_username(username: str) -> None:
    with pytest.raises(ValueError, match="username"):
        deep_link(username, 2998)


def test_deep_link_rejects_non_string_username() -> None:
    with pytest.raises(ValueError, match="username"):
        deep_link(None, 2998)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [0, -1, True, 2.0, "2998", None])
def test_deep_link_rejects_bad_commune_code(code: object) -> None:
    with pytest.raises(ValueError, match="commune code"):
        deep_link("TiplineBot", code)  # type: ignore[arg-type]


# --- the page --------------------------------------------------------------------------


def test_png_is_a4_at_150_dpi(poster: Poster) -> None:
    image = _image(poster.png)
    assert image.format == "PNG"
    assert image.size == (1240, 1754)
    assert image.mode == "RGB"
    assert tuple(round(d) for d in image.info["dpi"]) == (150, 150)


def test_nothing_is_drawn_in_the_margins(poster: Poster, crowded_poster: Poster) -> None:
    for png in (poster.png, crowded_poster.png):
        image = _image(png)
        inner = image.crop((40, 40, 1200, 1714))
        page = Image.new("RGB", image.size, (255, 255, 255))
        page.paste(inner, (40, 40))
        assert page.tobytes() == image.tobytes(), "ink within 40 px (~7 mm) of the edge"


def test_qr_decodes_to_the_link(poster: Poster) -> None:
    assert _decode(_image(poster.png)) == [LINK]


def test_qr_decodes_after_downscaling_to_half(poster: Poster) -> None:
    image = _image(poster.png)
    small = image.resize((620, 877), Image.Resampling.BILINEAR)
    assert _decode(small) == [LINK]


def test_qr_decodes_from_a_blurred_tilted_greyscale_copy(poster: Poster) -> None:
    """Roughly a phone photo of the printed page."""
    image = _image(poster.png).convert("L").resize((620, 877), Image.Resampling.LANCZOS)
    photo = image.rotate(7, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=200)
    photo = photo.filter(ImageFilter.GaussianBlur(1.2))
    assert _decode(photo) == [LINK]


def test_crowded_poster_still_scans(crowded_poster: Poster) -> None:
    image = _image(crowded_poster.png)
    assert image.size == (1240, 1754)
    assert _decode(image) == [LONGEST_LINK]
    assert _decode(image.resize((620, 877), Image.Resampling.BILINEAR)) == [LONGEST_LINK]


@pytest.mark.parametrize("which", ["poster", "crowded_poster"])
def test_qr_matches_segno_matrix_with_crisp_modules(
    which: str, request: pytest.FixtureRequest
) -> None:
    """Independent of any decoder: every module is a solid square of whole pixels, the
    modules are segno's matrix for the link, and the 4-module quiet zone is white."""
    poster: Poster = request.getfixturevalue(which)
    link = LINK if which == "poster" else LONGEST_LINK
    image = _image(poster.png).convert("L")
    # Only the QR modules are pure black (text is dark grey, the frame red).
    black = image.point(lambda v: 255 if v == 0 else 0)
    bbox = black.getbbox()
    assert bbox is not None
    left, top, right, bottom = bbox
    matrix = segno.make_qr(link, error="q", boost_error=True).matrix
    modules = len(matrix)
    assert right - left == bottom - top
    assert (right - left) % modules == 0
    scale = (right - left) // modules
    assert scale >= 10  # ≥ 1.7 mm per module at 150 dpi
    for row in range(modules):
        for col in range(modules):
            x0, y0 = left + col * scale, top + row * scale
            expected = 0 if matrix[row][col] else 255
            square = image.crop((x0, y0, x0 + scale, y0 + scale))
            assert square.getextrema() == (expected, expected), (row, col)
    border = 4 * scale
    for box in (
        (left - border, top - border, right + border, top),  # above
        (left - border, bottom, right + border, bottom + border),  # below
        (left - border, top, left, bottom),  # left
        (right, top, right + border, bottom),  # right
    ):
        assert image.crop(box).getextrema() == (255, 255), box


def test_rendering_is_deterministic_and_nfc_insensitive(poster: Poster) -> None:
    decomposed = render_poster(
        link=LINK,
        commune_name=unicodedata.normalize("NFD", "Xã  Phúc\u00a0Khánh\u200b"),
        province_name=unicodedata.normalize("NFD", "Tỉnh Lào Cai"),
    )
    assert decomposed.png == poster.png
    assert decomposed.pdf == poster.pdf


def test_poster_repr_does_not_dump_bytes(poster: Poster) -> None:
    assert len(repr(poster)) < 100


# --- the PDF ---------------------------------------------------------------------------


def test_pdf_is_one_a4_page_with_the_same_pixels(poster: Poster) -> None:
    pdf = poster.pdf
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    parser = PdfParser.PdfParser(buf=pdf)
    assert len(parser.pages) == 1
    page = parser.read_indirect(parser.pages[0])
    width, height = (float(v) for v in page[b"MediaBox"][2:])
    assert width == pytest.approx(595.28, abs=0.1)  # 210 mm
    assert height == pytest.approx(841.89, abs=0.1)  # 297 mm
    image_ref = page[b"Resources"][b"XObject"][b"Im0"]
    assert parser.buf is not None
    image, _ = parser.get_value(parser.buf, parser.xref_table[image_ref.object_id][0])
    assert (image.dictionary.Width, image.dictionary.Height) == (1240, 1754)
    assert image.dictionary.Filter == PdfParser.PdfName(b"FlateDecode")
    # Lossless: the stream is the PNG's own compressed scanlines.
    rows = zlib.decompress(image.buf)
    assert rows == zlib.decompress(posters._png_idat(poster.png))
    assert len(rows) == 1754 * (1 + 1240 * 3)
    info = parser.read_indirect(parser.trailer_dict[b"Info"])
    title = bytes(info[b"Title"]).decode("utf-16")
    assert title == "HÒM THƯ AN NINH - Công an xã Phúc Khánh"


# --- Vietnamese text -------------------------------------------------------------------


def test_fonts_draw_every_vietnamese_letter() -> None:
    assert unsupported_characters(VIETNAMESE_LETTERS) == set()
    assert unsupported_characters("0123456789 .,:;!?()/-–—“”‘’…%₫@#&*+=") == set()


def test_glyph_check_detects_missing_glyphs() -> None:
    """The check is real: characters outside the fonts are reported, not drawn as boxes."""
    assert unsupported_characters("Xã Phúc Khánh 🚓 中 Ж") == {"🚓", "中", "Ж"}


@pytest.mark.parametrize(
    "name", ["Xã Phúc Khánh", "Đặc khu Phú Quốc", "Phường Hoàn Kiếm", "Xã Ẳng Nưa", "Xã Ea H’Leo"]
)
def test_poster_texts_have_glyphs(name: str) -> None:
    in_sentence = posters._in_sentence(name)
    texts = [
        DEFAULT_TITLE,
        name,
        f"Công an {in_sentence}".upper(),
        *(line.replace("{commune}", in_sentence) for line in DEFAULT_INSTRUCTIONS),
    ]
    for text in texts:
        assert unsupported_characters(text) == set(), text


def test_every_commune_and_province_name_has_glyphs() -> None:
    lookup = pytest.importorskip("vietnam_provinces.lookup")
    names = [w.name for w in lookup.WARD_MAPPING.values()]
    names += [p.name for p in lookup.PROVINCE_MAPPING.values()]
    assert len(names) > 3000
    text = " ".join(names)
    assert unsupported_characters(text) == set()
    assert unsupported_characters(text.upper()) == set()


def test_font_cmaps_cover_vietnamese() -> None:
    """Cross-check with the fonts' character maps (fontTools, when installed)."""
    ttlib = pytest.importorskip("fontTools.ttLib")
    assets = resources.files("bot.assets")
    for name in ("DejaVuSans-subset.ttf", "DejaVuSans-Bold-subset.ttf"):
        with assets.joinpath(name).open("rb") as file:
            cmap = ttlib.TTFont(file).getBestCmap()
        assert not [ch for ch in VIETNAMESE_LETTERS if ord(ch) not in cmap], name
    with assets.joinpath("DejaVuSansMono-Bold-subset.ttf").open("rb") as file:
        cmap = ttlib.TTFont(file).getBestCmap()
    assert all(code in cmap for code in range(0x20, 0x7F))


def test_fonts_ship_with_their_license() -> None:
    assets = resources.files("bot.assets")
    license_text = assets.joinpath("DejaVu-LICENSE.txt").read_text(encoding="utf-8")
    assert "Bitstream Vera Fonts Copyright" in license_text
    assert "Arev Fonts Copyright" in license_text
    total = sum(
        assets.joinpath(name).read_bytes().__len__()
        for name in (
            "DejaVuSans-subset.ttf",
            "DejaVuSans-Bold-subset.ttf",
            "DejaVuSansMono-Bold-subset.ttf",
        )
    )
    assert total < 1_000_000


def test_commune_name_in_a_sentence() -> None:
    assert posters._in_sentence("Xã Phúc Khánh") == "xã Phúc Khánh"
    assert posters._in_sentence("Phường Hoàn Kiếm") == "phường Hoàn Kiếm"
    assert posters._in_sentence("Đặc khu Phú Quốc") == "đặc khu Phú Quốc"
    assert posters._in_sentence("Phúc Khánh") == "Phúc Khánh"
    assert posters._in_sentence("Xãi Phúc") == "Xãi Phúc"


# --- refusals --------------------------------------------------------------------------


def test_refuses_text_the_fonts_cannot_draw() -> None:
    with pytest.raises(ValueError, match="cannot draw"):
        render_poster(link=LINK, commune_name="Xã Phúc Khánh 🚓", province_name="Tỉnh Lào Cai")
    with pytest.raises(ValueError, match="cannot draw"):
        render_poster(
            link=LINK,
            commune_name="Xã Phúc Khánh",
            province_name="Tỉnh Lào Cai",
            instructions=["Gọi 113 📞"],
        )


@pytest.mark.parametrize("link", ["", "   ", "https://t.me/bot?start=c1 x", "https://t.me/bö"])
def test_refuses_bad_link(link: str) -> None:
    with pytest.raises(ValueError, match="link"):
        render_poster(link=link, commune_name="Xã Phúc Khánh", province_name="Tỉnh Lào Cai")


def test_refuses_empty_commune_name() -> None:
    with pytest.raises(ValueError, match="commune name"):
        render_poster(link=LINK, commune_name=" \u200b ", province_name="Tỉnh Lào Cai")


def test_refuses_more_text_than_fits() -> None:
    with pytest.raises(ValueError, match="too much text"):
        render_poster(
            link=LINK,
            commune_name="Xã Phúc Khánh",
            province_name="Tỉnh Lào Cai",
            instructions=[DEFAULT_INSTRUCTIONS[0]] * 12,
        )


def test_custom_text_and_no_title_or_instructions() -> None:
    poster = render_poster(
        link=LINK,
        commune_name="Phường Hoàn Kiếm",
        province_name="",
        title="",
        instructions="Gửi tin báo {commune} {không phải ô trống}",
    )
    assert _decode(_image(poster.png)) == [LINK]
    bare = render_poster(
        link=LINK,
        commune_name="Phường Hoàn Kiếm",
        province_name="Thành phố Hà Nội",
        instructions=(),
    )
    assert _decode(_image(bare.png)) == [LINK]
