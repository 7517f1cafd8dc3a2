"""Photo sanitiser: metadata stripping, orientation, downscaling and hostile input.

Fixtures in tests/fixtures/photos/ are real public sample images (see SOURCES.md there);
everything else is generated here.
"""

from __future__ import annotations

import io
import pickle
import random
import struct
import subprocess
import sys
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import (
    ExifTags,
    Image,
    ImageChops,
    ImageCms,
    ImageFile,
    ImageOps,
    ImageStat,
    JpegImagePlugin,
    PngImagePlugin,
    features,
)

from bot.domain import photos
from bot.domain.photos import (
    MAX_DECODED_BYTES,
    MAX_INPUT_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    REJECT_REASONS,
    PhotoRejected,
    SanitisedPhoto,
    SanitiserSelfCheckError,
    assert_clean_jpeg,
    heic_supported,
    sanitise_photo,
)

FIXTURES = Path(__file__).parent / "fixtures" / "photos"

# What Pillow may legitimately report for a bare JFIF JPEG; anything else is metadata.
JFIF_INFO_KEYS = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}
METADATA_INFO_KEYS = {"exif", "icc_profile", "xmp", "comment", "photoshop", "adobe", "mp"}
# Signatures of metadata blocks: none may appear anywhere in the output.
METADATA_SIGNATURES = (
    b"Exif\x00",
    b"http://ns.adobe.com/xap",
    b"xmpmeta",
    b"ICC_PROFILE",
    b"Photoshop 3.0",
    b"8BIM",
    b"MPF\x00",
)
# Marker bytes a clean baseline JPEG may contain: SOI, APP0, DQT, SOF0, DHT, SOS, EOI.
BASELINE_MARKERS = {0xD8, 0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xD9}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def header_markers(data: bytes) -> list[int]:
    """Marker codes of the segments up to and including SOS, plus the final EOI."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [0xD8], 2
    while True:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        markers.append(marker)
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            break
        pos += 2 + length
    assert data[-2:] == b"\xff\xd9"
    return [*markers, 0xD9]


def assert_no_metadata(result: SanitisedPhoto, *secrets: bytes) -> Image.Image:
    """Check the output with Pillow and by scanning its bytes; return it opened."""
    data = result.data
    for needle in (*METADATA_SIGNATURES, *secrets):
        assert needle not in data, f"{needle!r} survived sanitising"
    assert set(header_markers(data)) <= BASELINE_MARKERS
    assert data.count(b"\xff\xe0") >= 1 and data.find(b"\xff\xd9") == len(data) - 2

    out = Image.open(io.BytesIO(data))
    assert isinstance(out, JpegImagePlugin.JpegImageFile)
    assert out.format == "JPEG"  # not MPO
    assert out.mode == "RGB"
    assert out.size == (result.width, result.height)
    assert set(out.info) <= JFIF_INFO_KEYS, set(out.info) - JFIF_INFO_KEYS
    assert not set(out.info) & METADATA_INFO_KEYS
    assert [name for name, _ in out.applist] == ["APP0"]
    assert out.info.get("progressive") is None and out.info.get("progression") is None
    exif = out.getexif()
    assert len(exif) == 0
    assert len(exif.get_ifd(ExifTags.IFD.GPSInfo)) == 0
    assert_clean_jpeg(data)
    return out


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def reject_reason(data: bytes, **kwargs: int) -> str:
    with pytest.raises(PhotoRejected) as info:
        sanitise_photo(data, **kwargs)
    exc = info.value
    assert exc.reason in REJECT_REASONS
    # A short technical message, and no Pillow traceback chained to it.
    assert str(exc) and len(str(exc)) <= 300 and "\n" not in str(exc)
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    return exc.reason


def make_exif(*, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCamMaker"
    exif[ExifTags.Base.Model] = "SpyCam X-1000"
    exif[ExifTags.Base.BodySerialNumber] = "SERIAL-0042"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (21.0, 1.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (105.0, 51.0, 12.0)
    gps[ExifTags.GPS.GPSMapDatum] = "WGS-84-SECRET"
    return exif.tobytes()


EXIF_SECRETS = (b"SpyCamMaker", b"SpyCam X-1000", b"SERIAL-0042", b"WGS-84-SECRET")
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="21,1.5N" exif:GPSLongitude="105,51.2E" '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="XMP-SECRET-CREATOR"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
XMP_SECRETS = (b"XMP-SECRET-CREATOR", b"105,51.2E")
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pattern(size: tuple[int, int] = (96, 64), *, alpha: bool = False) -> Image.Image:
    """Four flat quadrants (red, green, blue, yellow): orientation errors are obvious."""
    width, height = size
    img = Image.new("RGBA" if alpha else "RGB", size)
    colours = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 30)]
    for index, colour in enumerate(colours):
        x, y = (index % 2) * width // 2, (index // 2) * height // 2
        fill = (*colour, 255) if alpha else colour
        img.paste(fill, (x, y, x + width // 2, y + height // 2))
    return img


# ----------------------------------------------------------------------------- API shape


def test_constants_and_reasons() -> None:
    assert MAX_INPUT_BYTES == 20 * 1024 * 1024
    assert MAX_PIXELS == 210_000_000
    assert MAX_DECODED_BYTES == 64 * 1024 * 1024
    assert MAX_SIDE == 2560
    assert {
        "too_large",
        "not_image",
        "unsupported_format",
        "bomb",
        "corrupt",
        "heic_unavailable",
    } == REJECT_REASONS


def test_photo_rejected_carries_reason_and_message() -> None:
    exc = PhotoRejected("bomb", "40000x40000 is too many pixels")
    assert exc.reason == "bomb"
    assert str(exc) == "40000x40000 is too many pixels"
    assert str(PhotoRejected("corrupt")) == "corrupt"
    clone = pickle.loads(pickle.dumps(exc))
    assert (clone.reason, str(clone)) == ("bomb", str(exc))
    with pytest.raises(ValueError, match="unknown"):
        PhotoRejected("nope")  # type: ignore[arg-type]


def test_repr_does_not_dump_the_jpeg() -> None:
    result = sanitise_photo(jpeg_bytes(pattern()))
    assert "data" not in repr(result) and "\\x" not in repr(result)
    assert result.source_format == "JPEG"


@pytest.mark.parametrize("kwargs", [{"quality": 0}, {"quality": 100}, {"max_side": 0}])
def test_invalid_arguments_are_programming_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        sanitise_photo(jpeg_bytes(pattern()), **kwargs)


# ------------------------------------------------------------------- real camera fixtures


@pytest.mark.parametrize(
    ("name", "secrets"),
    [
        (
            "DSCN0010.jpg",
            (b"NIKON", b"COOLPIX P6000", b"Nikon Transfer", b"WGS-84", b"2008:10:23"),
        ),
        (
            "DSCN0012.jpg",
            (b"NIKON", b"COOLPIX P6000", b"Nikon Transfer", b"WGS-84", b"2008:10:23"),
        ),
        (
            "45-gps_ifd.jpg",
            (b"Polyphony Digital", b"Gran Turismo 5", b"PMB Service Uploader", b"Sony"),
        ),
        ("jolla.jpg", (b"Jolla", b"2014:09:21")),
    ],
)
def test_camera_metadata_and_gps_are_stripped(name: str, secrets: tuple[bytes, ...]) -> None:
    original = fixture_bytes(name)
    source = Image.open(io.BytesIO(original))
    assert "exif" in source.info  # the fixture really carries EXIF...
    for needle in secrets:
        assert needle in original  # ...and the strings we look for
    if name.startswith("DSCN"):
        assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # real GPS position
        assert "xmp" in source.info

    result = sanitise_photo(original)

    assert result.source_format == "JPEG"
    assert_no_metadata(result, *secrets)


def test_jolla_8mp_takes_the_half_scale_fast_path_by_default() -> None:
    """3264 px / 2 = 1632 px lies between MIN_SIDE and MAX_SIDE: libjpeg decodes at half
    scale and no resize is needed."""
    original = fixture_bytes("jolla.jpg")
    result = sanitise_photo(original)
    assert (result.width, result.height) == (1632, 1224)
    out = assert_no_metadata(result, b"Jolla")
    reference = Image.open(io.BytesIO(original)).resize((1632, 1224), Image.Resampling.LANCZOS)
    assert mean_abs_diff(out, reference) < 3


def test_a_2600px_jpeg_is_not_halved_below_min_side() -> None:
    source = Image.new("RGB", (2600, 1950), "white")
    buffer = io.BytesIO()
    source.save(buffer, "JPEG")
    result = sanitise_photo(buffer.getvalue())
    assert (result.width, result.height) == (2560, 1920)  # 1300 px would be below MIN_SIDE


def test_jolla_8mp_is_downscaled_to_long_side_2560_when_asked() -> None:
    original = fixture_bytes("jolla.jpg")
    assert Image.open(io.BytesIO(original)).size == (3264, 2448)

    result = sanitise_photo(original, min_side=MAX_SIDE)

    assert (result.width, result.height) == (2560, 1920)
    out = assert_no_metadata(result, b"Jolla")
    reference = Image.open(io.BytesIO(original)).resize((2560, 1920), Image.Resampling.LANCZOS)
    assert mean_abs_diff(out, reference) < 3


def test_large_jpeg_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded_sizes: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: object) -> object:
        result = real_draft(self, mode, size)  # type: ignore[arg-type]
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    original = fixture_bytes("jolla.jpg")

    result = sanitise_photo(original, max_side=800)

    # 3264x2448 -> libjpeg decodes at 1/4 (816x612), then a small resize to 800x600.
    assert decoded_sizes == [(816, 612)]
    assert (result.width, result.height) == (800, 600)
    reference = Image.open(io.BytesIO(original)).resize((800, 600), Image.Resampling.LANCZOS)
    assert mean_abs_diff(Image.open(io.BytesIO(result.data)), reference) < 3


def test_small_images_are_not_upscaled() -> None:
    result = sanitise_photo(fixture_bytes("DSCN0010.jpg"))
    assert (result.width, result.height) == (640, 480)


def test_image01137_from_the_invalid_set_decodes_and_loses_its_xmp() -> None:
    """exif-samples files it under jpg/invalid/ because its *metadata* is broken for EXIF
    readers (no EXIF segment; an XMP packet claiming 5454x3647 px). The JPEG stream itself
    is valid: libjpeg decodes all 88x64 pixels into a normal photo. So it is neither
    "corrupt" nor "not_image": it is sanitised like any photo, and the XMP goes.
    """
    original = fixture_bytes("image01137.jpg")
    assert b"<exif:PixelXDimension>5454" in original
    assert b"Adobe Fireworks CS4" in original

    result = sanitise_photo(original)

    assert (result.width, result.height) == (88, 64)  # the SOF size, not the XMP claim
    assert_no_metadata(result, b"Adobe Fireworks", b"5454", b"uuid:")


def test_truncated_copy_of_image01137_is_corrupt() -> None:
    original = fixture_bytes("image01137.jpg")
    assert reject_reason(original[: len(original) * 2 // 3]) == "corrupt"


# ---------------------------------------------------------------- orientation (upright)


def test_portrait_6_comes_out_upright() -> None:
    original = fixture_bytes("portrait_6.jpg")
    source = Image.open(io.BytesIO(original))
    assert source.size == (600, 450)
    assert source.getexif()[ExifTags.Base.Orientation] == 6
    assert "icc_profile" in source.info
    upright = ImageOps.exif_transpose(source)

    result = sanitise_photo(original)

    assert (result.width, result.height) == (450, 600)  # swapped
    out = assert_no_metadata(result)
    assert mean_abs_diff(out, upright) < 5  # a q85 re-encode of this photo alone gives ~3.6
    # A wrong rotation of the same photo is far away, so the tolerance means something.
    assert mean_abs_diff(out, upright.transpose(Image.Transpose.ROTATE_180)) > 20


def test_portrait_6_upright_when_downscaled_through_draft() -> None:
    original = fixture_bytes("portrait_6.jpg")
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))

    result = sanitise_photo(original, max_side=300)

    assert (result.width, result.height) == (225, 300)
    reference = upright.resize((225, 300), Image.Resampling.LANCZOS)
    out = Image.open(io.BytesIO(result.data))
    # DCT-scaled decode + q85 on a detailed 225x300 photo: ~5 apart; wrong rotation: >20
    assert mean_abs_diff(out, reference) < 7
    assert mean_abs_diff(out, reference.transpose(Image.Transpose.ROTATE_180)) > 20


# The stored pixels for each EXIF orientation, so that a viewer shows `pattern()` upright.
STORED_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("max_side", [MAX_SIDE, 40])
def test_every_exif_orientation_matches_exif_transpose(orientation: int, max_side: int) -> None:
    upright = pattern((96, 64))
    method = STORED_FOR_ORIENTATION[orientation]
    stored = upright if method is None else upright.transpose(method)
    original = jpeg_bytes(stored, quality=95, exif=make_exif(orientation=orientation))
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    assert mean_abs_diff(expected, upright) < 3  # sanity of the table above

    result = sanitise_photo(original, max_side=max_side)

    out = assert_no_metadata(result, *EXIF_SECRETS)
    expected = expected.resize(out.size, Image.Resampling.LANCZOS)
    assert out.size == ((96, 64) if max_side == MAX_SIDE else (40, 27))
    assert mean_abs_diff(out, expected) < 6


def test_orientation_given_only_in_xmp_is_applied_like_exif_transpose() -> None:
    stored = pattern((96, 64)).transpose(Image.Transpose.ROTATE_90)
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    original = jpeg_bytes(stored, quality=95, xmp=xmp)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))

    out = assert_no_metadata(sanitise_photo(original))

    assert out.size == expected.size == (96, 64)
    assert mean_abs_diff(out, expected) < 3


# ------------------------------------------------------------ generated metadata carriers


def insert_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def test_generated_jpeg_loses_exif_icc_comment_xmp_iptc_adobe_and_trailer() -> None:
    base = jpeg_bytes(
        pattern((320, 240)),
        quality=90,
        exif=make_exif(),
        icc_profile=SRGB_ICC,
        comment=b"COM-SECRET-COMMENT",
        xmp=XMP,
    )
    iptc = b"\x1c\x02\x50\x00\x12IPTC-SECRET-BYLINE"
    photoshop = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    original = insert_segment(base, 0xED, photoshop)  # APP13 Photoshop/IPTC
    original = insert_segment(original, 0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01")  # APP14
    original = insert_segment(original, 0xEC, b"Ducky\x00\x01DUCKY-SECRET")  # APP12
    original += b"SEFT-TRAILER-SECRET-GPS"  # data after EOI, as some phones append
    source = Image.open(io.BytesIO(original))
    assert {"exif", "icc_profile", "comment", "xmp", "photoshop", "adobe"} <= set(source.info)

    result = sanitise_photo(original)

    assert (result.width, result.height) == (320, 240)
    assert_no_metadata(
        result,
        *EXIF_SECRETS,
        *XMP_SECRETS,
        b"COM-SECRET-COMMENT",
        b"IPTC-SECRET-BYLINE",
        b"DUCKY-SECRET",
        b"SEFT-TRAILER-SECRET-GPS",
        b"Adobe",
        b"Ducky",
        b"sRGB",
    )


def test_png_loses_icc_text_chunks_and_exif() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "PNG-SECRET-AUTHOR")
    info.add_text("Comment", "PNG-SECRET-ZTXT " * 20, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=False)
    info.add_itxt("Description", "PNG-SECRET-ITXT", lang="vi", tkey="Mô tả")
    original = encode(pattern(), "PNG", pnginfo=info, icc_profile=SRGB_ICC, exif=make_exif())
    source = Image.open(io.BytesIO(original))
    assert {"Author", "Comment", "icc_profile", "exif", "Description"} <= set(source.info)

    result = sanitise_photo(original)

    assert result.source_format == "PNG"
    out = assert_no_metadata(result, *EXIF_SECRETS, *XMP_SECRETS, b"PNG-SECRET", b"sRGB")
    assert mean_abs_diff(out, pattern()) < 3


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_loses_exif_icc_and_xmp() -> None:
    original = encode(
        pattern(), "WEBP", quality=95, exif=make_exif(), icc_profile=SRGB_ICC, xmp=XMP
    )
    source = Image.open(io.BytesIO(original))
    assert {"exif", "icc_profile", "xmp"} <= set(source.info)

    result = sanitise_photo(original)

    assert result.source_format == "WEBP"
    out = assert_no_metadata(result, *EXIF_SECRETS, *XMP_SECRETS, b"sRGB")
    assert mean_abs_diff(out, pattern()) < 4


def test_mpo_keeps_only_the_first_frame_and_reports_jpeg() -> None:
    first, second = pattern((160, 120)), Image.new("RGB", (160, 120), (0, 0, 0))
    original = encode(first, "MPO", save_all=True, append_images=[second], exif=make_exif())
    assert Image.open(io.BytesIO(original)).format == "MPO"

    result = sanitise_photo(original)

    assert result.source_format == "JPEG"
    out = assert_no_metadata(result, *EXIF_SECRETS)
    assert mean_abs_diff(out, first) < 3


# ------------------------------------------------------------------------- colour modes


def test_rgba_png_is_composited_on_white_without_leaking_hidden_colour() -> None:
    img = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    img.paste((0, 0, 255, 255), (32, 0, 64, 64))  # opaque blue right half
    img.paste((0, 0, 0, 128), (0, 48, 32, 64))  # half-transparent black, bottom left

    out = assert_no_metadata(sanitise_photo(encode(img, "PNG")))

    assert _close(out.getpixel((8, 8)), (255, 255, 255))  # white, not red
    assert _close(out.getpixel((48, 32)), (0, 0, 255))
    assert _close(out.getpixel((8, 56)), (127, 127, 127), tolerance=6)


def test_greyscale_with_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 16, 32))
    original = encode(rgba.convert("LA"), "PNG")
    assert Image.open(io.BytesIO(original)).mode == "LA"

    out = Image.open(io.BytesIO(sanitise_photo(original).data))

    assert _close(out.getpixel((4, 4)), (0, 0, 0))
    assert _close(out.getpixel((28, 4)), (255, 255, 255))


def test_palette_png_with_transparent_entries_is_composited_on_white() -> None:
    img = Image.new("P", (48, 16), 0)
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 0] + [0] * 759)
    img.paste(1, (16, 0, 32, 16))
    img.paste(2, (32, 0, 48, 16))
    # tRNS: index 0 (red) invisible, 1 (green) opaque, 2 (black) half transparent
    original = encode(img, "PNG", transparency=b"\x00\xff\x80")
    source = Image.open(io.BytesIO(original))
    assert source.mode == "P" and "transparency" in source.info

    out = Image.open(io.BytesIO(sanitise_photo(original).data))

    assert _close(out.getpixel((4, 4)), (255, 255, 255))
    assert _close(out.getpixel((20, 4)), (0, 255, 0))
    assert _close(out.getpixel((44, 4)), (127, 127, 127), tolerance=6)


def test_16_bit_greyscale_png_keeps_its_tones() -> None:
    row = struct.pack("<32H", *([0] * 16 + [32768] * 16))  # black | mid grey
    img = Image.frombytes("I;16", (32, 8), row * 8)

    out = Image.open(io.BytesIO(sanitise_photo(encode(img, "PNG")).data))

    assert _close(out.getpixel((4, 4)), (0, 0, 0))
    assert _close(out.getpixel((28, 4)), (128, 128, 128))


@pytest.mark.parametrize("mode", ["L", "CMYK", "1"])
def test_other_modes_become_rgb(mode: str) -> None:
    img = pattern().convert(mode)
    original = encode(img, "PNG" if mode == "1" else "JPEG")

    result = sanitise_photo(original)

    out = assert_no_metadata(result)
    assert mean_abs_diff(out, img.convert("RGB")) < 6


def _close(pixel: object, expected: tuple[int, int, int], tolerance: int = 4) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# ---------------------------------------------------------------------------- HEIF/HEIC


@pytest.mark.skipif(not heic_supported(), reason="pillow-heif (extra 'heic') not installed")
def test_iphone_heic_becomes_clean_jpeg() -> None:
    import pillow_heif

    original = fixture_bytes("IMG_5195.HEIC")
    assert b"Apple" in original and b"iPhone 11 Pro Max" in original

    result = sanitise_photo(original)

    assert result.source_format == "HEIF"
    assert (result.width, result.height) == (1983, 2560)  # 2566x3313 -> long side 2560
    out = assert_no_metadata(result, b"Apple", b"iPhone", b"14.4.2")
    heif = pillow_heif.open_heif(io.BytesIO(original))
    reference = Image.frombytes(
        heif.mode, heif.size, bytes(heif.data), "raw", heif.mode, heif.stride
    )
    reference = reference.resize(out.size, Image.Resampling.LANCZOS)
    assert mean_abs_diff(out, reference) < 3


@pytest.mark.skipif(not heic_supported(), reason="pillow-heif (extra 'heic') not installed")
def test_heic_is_decoded_on_one_libheif_thread() -> None:
    # libheif's default, four threads started per decode, left the process ~200 MB larger
    # after a flood of HEICs (a fresh malloc arena per thread); see _register_heif_opener
    import pillow_heif

    sanitise_photo(fixture_bytes("IMG_5195.HEIC"))
    assert pillow_heif.options.DECODE_THREADS == 1


@pytest.mark.skipif(not heic_supported(), reason="pillow-heif (extra 'heic') not installed")
@pytest.mark.parametrize("cut", [20, 1000, 3020, 400_000, 833_000])
def test_truncated_heic_is_corrupt(cut: int) -> None:
    # libheif alone would decode the cut file and paint the missing tiles green.
    original = fixture_bytes("IMG_5195.HEIC")
    assert reject_reason(original[:cut]) == "corrupt"


def test_heic_without_pillow_heif_is_heic_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "heic_supported", lambda: False)
    assert reject_reason(fixture_bytes("IMG_5195.HEIC")) == "heic_unavailable"


def test_heic_when_the_opener_cannot_register_is_heic_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(photos, "_register_heif_opener", lambda: False)
    assert reject_reason(fixture_bytes("IMG_5195.HEIC")) == "heic_unavailable"


def test_heic_supported_is_false_when_pillow_heif_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # makes the import fail
    photos.heic_supported.cache_clear()
    try:
        assert photos.heic_supported() is False
        assert reject_reason(fixture_bytes("IMG_5195.HEIC")) == "heic_unavailable"
    finally:
        monkeypatch.undo()
        photos.heic_supported.cache_clear()


def test_pillow_heif_is_imported_lazily() -> None:
    jpeg = fixture_bytes("DSCN0010.jpg")
    code = (
        "import sys\n"
        "from bot.domain.photos import sanitise_photo\n"
        "assert 'pillow_heif' not in sys.modules\n"
        f"sanitise_photo(open({str(FIXTURES / 'DSCN0010.jpg')!r}, 'rb').read())\n"
        "assert 'pillow_heif' not in sys.modules\n"
        "print('ok')\n"
    )
    assert jpeg  # the fixture exists
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --------------------------------------------------------------------------- rejections


def test_oversize_bytes_are_too_large() -> None:
    assert reject_reason(b"\xff\xd8\xff" + bytes(MAX_INPUT_BYTES)) == "too_large"
    assert reject_reason(fixture_bytes("DSCN0010.jpg"), max_bytes=1000) == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        random.Random(1234).randbytes(4096),
        b"",
        b"hello, this is not a photo",
        b"\x00" * 100,
    ],
    ids=["random", "empty", "text", "zeros"],
)
def test_non_images_are_not_image(data: bytes) -> None:
    assert reject_reason(data) == "not_image"


def _avif() -> bytes:
    return encode(pattern(), "AVIF")


def _ftyp(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"mp41"


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(pattern(), "GIF"),
        lambda: encode(pattern(), "TIFF", exif=make_exif()),
        lambda: encode(pattern(), "BMP"),
        lambda: encode(pattern((32, 32)), "ICO"),
        lambda: encode(pattern(), "PPM"),
        lambda: encode(pattern(), "PDF"),
        lambda: _ftyp(b"isom") + bytes(100),  # an MP4 video
        lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        pytest.param(
            _avif,
            marks=pytest.mark.skipif(not features.check("avif"), reason="no AVIF encoder"),
        ),
    ],
    ids=["gif", "tiff", "bmp", "ico", "ppm", "pdf", "mp4", "svg", "avif"],
)
def test_formats_outside_the_whitelist_are_unsupported(make: object) -> None:
    assert callable(make)
    assert reject_reason(make()) == "unsupported_format"


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9])
@pytest.mark.parametrize("name", ["DSCN0010.jpg", "jolla.jpg"])
def test_truncated_jpeg_is_corrupt(name: str, fraction: float) -> None:
    original = fixture_bytes(name)
    assert reject_reason(original[: int(len(original) * fraction)]) == "corrupt"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + random.Random(5).randbytes(2000),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"\x89PNG\r\n\x1a\n" + random.Random(6).randbytes(500),
        b"RIFF\x00\x10\x00\x00WEBPVP8 " + random.Random(7).randbytes(200),
    ],
    ids=["jpeg-garbage", "jpeg-header-only", "png-garbage", "webp-garbage"],
)
def test_garbage_behind_a_whitelisted_signature_is_corrupt(data: bytes) -> None:
    assert reject_reason(data) == "corrupt"


def test_truncated_png_and_webp_are_corrupt() -> None:
    noisy = Image.frombytes("RGB", (128, 128), random.Random(3).randbytes(128 * 128 * 3))
    png = encode(noisy, "PNG")
    assert reject_reason(png[: len(png) // 2]) == "corrupt"
    webp = encode(noisy, "WEBP")
    assert reject_reason(webp[: len(webp) // 2]) == "corrupt"


def test_png_with_a_damaged_chunk_is_corrupt() -> None:
    png = bytearray(encode(pattern(), "PNG"))
    png[40] ^= 0xFF  # inside IHDR/IDAT: CRC mismatch
    assert reject_reason(bytes(png)) == "corrupt"


# ------------------------------------------------------------------------ decompression bombs


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_with_header(width: int, height: int, idat: bytes, *, bit_depth: int = 8) -> bytes:
    colour_type = 0  # greyscale
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    small = bytearray(jpeg_bytes(Image.new("RGB", (8, 8), (90, 90, 90))))
    sof = small.index(b"\xff\xc0")
    small[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(small)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data gets decoded."""

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_no_decoding_fixture_really_catches_decoding(no_decoding: None) -> None:
    for data in (encode(pattern(), "PNG"), jpeg_bytes(pattern())):
        with pytest.raises(AssertionError, match="decoded a bomb"):
            sanitise_photo(data)


def png_of_zeros(width: int, height: int, *, colour_type: int = 6) -> bytes:
    """A genuine, fully decodable 8-bit PNG of zeros (RGBA by default; 2 = RGB, 3 =
    palette, 0 = greyscale): a 7071x7071 RGBA one is 190 KB on the wire, 200 MB decoded."""
    channels = {0: 1, 2: 3, 3: 1, 6: 4}[colour_type]
    row = bytes(1 + width * channels)  # filter byte + pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    palette = png_chunk(b"PLTE", bytes(3 * 256)) if colour_type == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + palette
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def flat_jpeg(width: int, height: int) -> bytes:
    """A genuine baseline 4:2:0 JPEG of uniform grey, of any size (multiples of 16), in
    milliseconds: 16320x12240 (200 MP, the largest phone sensors) is 3 MB."""
    assert width % 16 == 0 and height % 16 == 0
    small = jpeg_bytes(Image.new("RGB", (16, 16), (128, 128, 128)), subsampling="4:2:0")
    sos = small.index(b"\xff\xda")
    header = bytearray(small[: sos + 2 + int.from_bytes(small[sos + 2 : sos + 4], "big")])
    sof = header.index(b"\xff\xc0")
    header[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    # One MCU with the standard Huffman tables: four Y blocks (DC difference 0 = "00", EOB
    # = "1010"), then Cb and Cr ("00" + "00" each): 32 bits, no 0xFF byte to stuff.
    mcu = bytes([0b00101000, 0b10100010, 0b10001010, 0b00000000])
    return bytes(header) + mcu * ((width // 16) * (height // 16)) + b"\xff\xd9"


def progressive_jpeg_claiming(width: int, height: int) -> bytes:
    small = bytearray(jpeg_bytes(Image.new("RGB", (8, 8), (90, 90, 90)), progressive=True))
    sof = small.index(b"\xff\xc2")
    small[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(small)


@pytest.mark.parametrize(
    "data",
    [
        png_with_header(20000, 20000, zlib.compress(b"")),  # Pillow's hard limit
        png_with_header(8000, 8000, zlib.compress(b"")),  # 64 MP L: 64 MB + its RGB copy
        jpeg_claiming(20000, 20000),
        jpeg_claiming(16384, 13000),  # 213 MP: over MAX_PIXELS
        jpeg_claiming(65000, 65000),  # 4.2 GP: over MAX_PIXELS, and 268 MB even at 1/8
        progressive_jpeg_claiming(6000, 6000),  # 36 MP: 108 MB of DCT coefficients
    ],
    ids=["png-400mp", "png-64mp", "jpeg-400mp", "jpeg-213mp", "jpeg-4gp", "progressive-36mp"],
)
def test_header_bombs_are_refused_before_decoding(data: bytes, no_decoding: None) -> None:
    started = time.perf_counter()
    assert reject_reason(data) == "bomb"
    assert time.perf_counter() - started < 0.5


def test_real_compressible_png_bomb_is_refused_before_decoding(no_decoding: None) -> None:
    # A genuine, fully decodable 1-bit 20000x20000 PNG: 50 KB on the wire, 400 MP (1.2 GB
    # as RGB) once decoded.
    width = height = 20000
    row = bytes(1 + width // 8)  # filter byte + packed pixels, all zero
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    bomb = png_with_header(width, height, idat, bit_depth=1)
    assert len(bomb) < 100_000

    started = time.perf_counter()
    assert reject_reason(bomb) == "bomb"
    assert time.perf_counter() - started < 0.5


def test_real_png_just_above_our_limit_is_refused(no_decoding: None) -> None:
    width, height = 7100, 7100  # 50.4 MP: under Pillow's own 89 MP warning
    idat = zlib.compress(bytes(1 + width // 8) * height, 9)
    assert reject_reason(png_with_header(width, height, idat, bit_depth=1)) == "bomb"


def test_the_7071px_png_of_the_flood_is_refused_from_its_header(no_decoding: None) -> None:
    # 50.0 MP passed the old 50 MP pixel limit and cost ~650 MB to decode (RGBA, 4 bytes
    # a pixel, and the copies after it); 190 KB on the wire.
    bomb = png_of_zeros(7071, 7071)
    assert len(bomb) < 200_000
    with pytest.raises(PhotoRejected) as info:
        sanitise_photo(bomb)
    assert info.value.reason == "bomb"
    assert "199996164 bytes" in str(info.value)


def test_conversion_copies_count_against_the_budget(no_decoding: None) -> None:
    # A palette PNG is decoded at 1 byte a pixel (49 MB here: under 64 MiB), but turned
    # into RGB/RGBA it needs 4 more bytes a pixel while the palette image is still held.
    assert reject_reason(png_of_zeros(7000, 7000, colour_type=3)) == "bomb"


def test_the_budget_is_bytes_of_the_decoded_mode_conversions_included() -> None:
    rgb, grey = png_of_zeros(100, 100, colour_type=2), png_of_zeros(100, 100, colour_type=0)
    assert sanitise_photo(rgb, max_decoded_bytes=100 * 100 * 4).width == 100
    assert reject_reason(rgb, max_decoded_bytes=100 * 100 * 4 - 1) == "bomb"
    assert sanitise_photo(grey, max_decoded_bytes=100 * 100 * 5).width == 100
    assert reject_reason(grey, max_decoded_bytes=100 * 100 * 5 - 1) == "bomb"


def test_the_budget_is_counted_at_the_jpeg_draft_scale() -> None:
    original = jpeg_bytes(Image.effect_noise((800, 800), 40).convert("RGB"))
    # max_side 100: libjpeg decodes at 1/8, 100x100 RGB = 40,000 bytes
    assert sanitise_photo(original, max_side=100, max_decoded_bytes=40_000).width == 100
    assert reject_reason(original, max_side=100, max_decoded_bytes=39_999) == "bomb"


def test_multi_scan_jpegs_count_their_whole_coefficient_buffer(no_decoding: None) -> None:
    # Progressive (or non-interleaved) JPEGs are decoded in passes over every DCT
    # coefficient of the full image, whatever the scale: 800x800 4:2:0 = 1.92 MB of them.
    noise = Image.effect_noise((800, 800), 40).convert("RGB")
    progressive = jpeg_bytes(noise, progressive=True)
    assert reject_reason(progressive, max_side=100, max_decoded_bytes=1_900_000) == "bomb"
    baseline = bytearray(jpeg_bytes(noise))
    sos = baseline.index(b"\xff\xda")
    assert baseline[sos + 4] == 3  # one interleaved scan of the 3 components...
    baseline[sos + 4] = 1  # ...or a first scan of one component: the same buffer
    assert reject_reason(bytes(baseline), max_side=100, max_decoded_bytes=1_900_000) == "bomb"


def test_progressive_jpeg_within_the_budget_decodes() -> None:
    noise = Image.effect_noise((800, 800), 40).convert("RGB")
    result = sanitise_photo(jpeg_bytes(noise, progressive=True), max_side=100,
                            max_decoded_bytes=2_000_000)
    assert (result.width, result.height) == (100, 100)


def test_a_200_megapixel_phone_jpeg_is_decoded_at_one_eighth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pillow's Image.open refuses it outright (over 2 x MAX_IMAGE_PIXELS = 179 MP), yet
    # decoded at 1/8 it is 2040x1530, 12.5 MB.
    original = flat_jpeg(16320, 12240)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(original))
    decoded_sizes: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: object) -> object:
        result = real_draft(self, mode, size)  # type: ignore[arg-type]
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)

    result = sanitise_photo(original)

    assert decoded_sizes == [(2040, 1530)]
    assert (result.width, result.height) == (2040, 1530)
    out = assert_no_metadata(result)
    assert ImageStat.Stat(out).mean == pytest.approx([128, 128, 128], abs=1)


def test_pillow_warning_band_is_a_rejection_without_touching_warning_filters() -> None:
    # 100 MP: above Pillow's DecompressionBombWarning threshold (89.5 MP), below its
    # error threshold (179 MP). Pillow may warn; we must refuse either way.
    bomb = png_with_header(10000, 10000, zlib.compress(b""))
    filters_before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert reject_reason(bomb, max_pixels=10**9) == "bomb"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert reject_reason(bomb, max_pixels=10**9) == "bomb"
    assert list(warnings.filters) == filters_before


def test_max_pixels_is_respected() -> None:
    original = fixture_bytes("DSCN0010.jpg")  # 640x480 = 307200 px
    assert reject_reason(original, max_pixels=300_000) == "bomb"
    assert sanitise_photo(original, max_pixels=307_200).width == 640


# ------------------------------------------------------------------ self-check, threading


def test_self_check_accepts_only_bare_baseline_jpeg() -> None:
    img = pattern()
    assert_clean_jpeg(jpeg_bytes(img))
    bad = {
        "exif": jpeg_bytes(img, exif=make_exif()),
        "icc": jpeg_bytes(img, icc_profile=SRGB_ICC),
        "comment": jpeg_bytes(img, comment=b"hello"),
        "xmp": jpeg_bytes(img, xmp=XMP),
        "progressive": jpeg_bytes(img, progressive=True),
        "trailer": jpeg_bytes(img) + b"trailing",
        "app13": insert_segment(jpeg_bytes(img), 0xED, b"Photoshop 3.0\x00"),
    }
    for name, data in bad.items():
        with pytest.raises(SanitiserSelfCheckError):
            assert_clean_jpeg(data)
        assert name  # for the failure message
    with pytest.raises(SanitiserSelfCheckError):
        assert_clean_jpeg(jpeg_bytes(img), expected_size=(1, 1))


def test_self_check_failure_is_not_reported_as_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    def always_fail(data: bytes, *, expected_size: object = None) -> None:
        raise SanitiserSelfCheckError("simulated leak")

    monkeypatch.setattr(photos, "assert_clean_jpeg", always_fail)
    with pytest.raises(SanitiserSelfCheckError):
        sanitise_photo(jpeg_bytes(pattern()))


def test_two_thread_resize_matches_single_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    original = fixture_bytes("jolla.jpg")
    parallel = Image.open(io.BytesIO(sanitise_photo(original).data))
    monkeypatch.setattr(photos, "_PARALLEL_MIN_PIXELS", 10**12)
    single = Image.open(io.BytesIO(sanitise_photo(original).data))
    assert mean_abs_diff(parallel, single) < 0.5


def test_concurrent_calls_are_independent_and_leave_global_state_alone() -> None:
    inputs = [fixture_bytes(n) for n in ("DSCN0010.jpg", "portrait_6.jpg", "45-gps_ifd.jpg")]
    expected = [sanitise_photo(data).data for data in inputs]
    filters_before = list(warnings.filters)
    pillow_limit = Image.MAX_IMAGE_PIXELS

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda data: sanitise_photo(data).data, inputs * 3))

    assert results == expected * 3
    assert list(warnings.filters) == filters_before
    assert pillow_limit == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding() -> None:
    """Each scan is a pass over the whole image: a scan bomb would hold the picture worker."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    sos = data.index(b"\xff\xda")
    header, scans = data[:sos], data[sos:-2]
    many = header + scans * 40 + b"\xff\xd9"  # the same progressive scans again and again
    assert many.count(b"\xff\xda") > 100
    with pytest.raises(PhotoRejected) as refused:
        sanitise_photo(many)
    assert refused.value.reason == "bomb"
    assert sanitise_photo(data).width == 64  # an ordinary progressive JPEG still passes
