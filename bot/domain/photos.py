"""Photo sanitiser: a resident's upload becomes a clean, upright, downscaled baseline JPEG.

This is the anonymity-critical step between "a resident sent a picture" and "the bot posts
it in a police group". Images sent to a bot *as a file* keep their EXIF (GPS position,
camera serial, timestamps), XMP, ICC profile and comments; a plain Pillow re-save keeps
some of them (JPEG->JPEG keeps the comment, PNG keeps ICC; exif_transpose only drops
the Orientation tag). So we:

1. refuse oversized input before touching it (``too_large``);
2. sniff the magic bytes and open *only* whitelisted formats (JPEG, PNG, WEBP, and
   HEIF/HEIC when the optional pillow-heif is installed) -- other Pillow parsers never
   see resident data;
3. read the header only and refuse (``bomb``), before any pixel is decoded, images with
   too many pixels or whose decode would need more than ``max_decoded_bytes`` of pixel
   memory (counted at the reduced JPEG scale, conversions included; see
   ``_decode_budget``);
4. decode (JPEG: at 1/2, 1/4 or 1/8 scale via ``draft()`` when we downscale anyway),
   downscale so the long side is at most ``max_side``, apply the EXIF orientation and
   flatten transparency onto white;
5. rebuild a brand-new image from the raw pixel bytes, so no info dict, EXIF, XMP, ICC
   profile, comment or embedded thumbnail can travel along, and save a baseline JPEG
   with all metadata options explicitly empty;
6. self-check the output (marker walk + Pillow re-open): anything but SOI, APP0/JFIF,
   DQT, SOF0, DHT, SOS and EOI aborts with :class:`SanitiserSelfCheckError`.

Everything is synchronous and CPU-bound: the bot runs it on the small dedicated pool of
:class:`bot.domain.picture_jobs.PictureJobs`, never on asyncio's default executor. No global
Pillow state is changed (``LOAD_TRUNCATED_IMAGES`` and ``MAX_IMAGE_PIXELS`` are only
read, warning filters are never touched: ``warnings.catch_warnings`` is not thread-safe).
"""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from PIL import ExifTags, Image, JpegImagePlugin, UnidentifiedImageError

log = logging.getLogger(__name__)

RejectReason = Literal[
    "too_large",  # more bytes than max_bytes
    "not_image",  # no known image signature
    "unsupported_format",  # a real image/document format outside the whitelist
    "bomb",  # too many pixels (decompression bomb)
    "corrupt",  # truncated or malformed data in a whitelisted format
    "heic_unavailable",  # HEIF/HEIC, but pillow-heif is not installed
]
REJECT_REASONS: Final[frozenset[str]] = frozenset(get_args(RejectReason))

# Telegram Bot API getFile downloads at most 20 MB (Bot API docs, "getFile").
MAX_INPUT_BYTES: Final = 20 * 1024 * 1024
# Refuse images declaring more than 210 megapixels, judged from the header. The largest
# phone sensors make 200 MP photos (16320x12240 = 199.8 MP); sent "as a file" they are
# JPEGs, which we decode at 1/8 scale (a few MB of pixels). This cap bounds the CPU a JPEG
# costs (libjpeg still walks every block); memory is bounded by MAX_DECODED_BYTES.
MAX_PIXELS: Final = 210_000_000
# Pixel memory one decode may need, judged from the header before anything is decoded:
# width x height x bytes per pixel of the image Pillow decodes (at the DCT-scaled size for
# JPEGs), plus the copies the conversion to RGB/RGBA makes, plus the whole-image DCT
# coefficient buffer libjpeg keeps for progressive and other multi-scan JPEGs (those are
# decoded at full size first whatever the scale; see _decode_budget). Pillow stores
# RGB/RGBA in 4 bytes a pixel, so 64 MiB is a 16.7 MP PNG, WebP or HEIC (12 MP phone
# photos pass; a 7071x7071 PNG of zeros, 190 KB on the wire and 200 MB decoded, does
# not), and any baseline JPEG up to MAX_PIXELS. The whole sanitisation peaks at about
# twice what is counted (the resized copy; +130 MB measured for a 4000x4000 PNG), three
# times for HEIC (libheif's own copies: +105 MB for the 8.5 MP fixture); PictureJobs
# runs one at a time (docs/benchmarks.md).
MAX_DECODED_BYTES: Final = 64 * 1024 * 1024
# Long side of the output: enough detail for evidence (a number plate across the street),
# ~0.3-1 MB as a q85 JPEG, far inside sendPhoto's limits (10 MB, width + height <= 10000;
# Bot API). Note sendPhoto also wants an aspect ratio <= 20: callers check width/height.
MAX_SIDE: Final = 2560
# JPEG fast path: libjpeg decodes at 1/2, 1/4 or 1/8 scale for a fraction of the cost of
# a full decode + resize. When such a scale lands between MIN_SIDE and MAX_SIDE we take it
# as is (an 8 MP phone photo, 3264 px, comes out at 1632 px in ~30 ms instead of 2560 px in
# ~150 ms). 1536 px stays above what Telegram itself keeps of a photo (1280 px). Pass
# min_side=max_side to always get the full MAX_SIDE.
MIN_SIDE: Final = 1536

SourceFormat = Literal["JPEG", "PNG", "WEBP", "HEIF"]

_WHITELIST: Final[dict[str, SourceFormat]] = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "HEIF": "HEIF",
}

# Exceptions Pillow (and pillow-heif) raise on malformed or truncated data. Anything
# raised while parsing or decoding resident data is mapped to "corrupt".
_DECODE_ERRORS: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
    RuntimeError,
)

# Same mapping as PIL.ImageOps.exif_transpose (EXIF Orientation -> transposition). We
# apply it ourselves so that it runs *after* downscaling, on the smaller image.
_ORIENTATION_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Downscaling filter. HAMMING (Pillow's antialiased filter with support 1) instead of
# LANCZOS (support 3): on the 8 MP benchmark photo resized to 2560 px it is 2.2x faster,
# and after the q85 JPEG encode the two outputs differ by 0.1 dB PSNR (43.9 vs 44.0 dB
# against a LANCZOS reference): no visible difference, ~100 ms saved per photo.
_RESAMPLE: Final = Image.Resampling.HAMMING
# Once the remaining downscale factor is at least twice this, first shrink by an integer
# factor with Image.reduce() (box average, fast) and finish with _RESAMPLE. Same idea and
# value as Image.thumbnail()'s default reducing_gap.
_REDUCING_GAP: Final = 2.0
# Resizes producing at least this many pixels are split in two horizontal bands resized
# in two threads (Pillow releases the GIL while resampling).
_PARALLEL_MIN_PIXELS: Final = 1_000_000

_WHITE: Final = (255, 255, 255)


class PhotoRejected(Exception):
    """The upload cannot be turned into a clean photo.

    ``reason`` is one of :data:`REJECT_REASONS` (handlers translate it for the resident);
    ``str(exc)`` is a short English technical message for logs.
    """

    reason: str

    def __init__(self, reason: RejectReason, message: str | None = None) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown PhotoRejected reason: {reason!r}")
        super().__init__(reason, message or reason)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[1])


class SanitiserSelfCheckError(RuntimeError):
    """The produced JPEG still carries metadata: a bug; the photo must not be sent."""


@dataclass(frozen=True, slots=True)
class SanitisedPhoto:
    data: bytes = field(repr=False)  # baseline JPEG; kept out of repr() so logs stay small
    width: int
    height: int
    source_format: SourceFormat


# --------------------------------------------------------------------------- HEIF support


@functools.cache
def heic_supported() -> bool:
    """True when pillow-heif (optional extra ``heic``) is installed with a HEVC decoder."""
    try:
        pillow_heif = importlib.import_module("pillow_heif")
        # pillow-heif imports even when its C extension is missing (it defers the error);
        # asking libheif for its decoders proves the extension really loads.
        decoders = pillow_heif.libheif_info().get("decoders")
    except Exception as exc:  # ImportError, or the deferred extension error
        log.info("HEIC support unavailable: %s: %s", type(exc).__name__, exc)
        return False
    # Older pillow-heif versions do not list decoders; their wheels always bundle one.
    return decoders is None or bool(decoders)


_heif_lock = threading.Lock()
_heif_registered = False


def _register_heif_opener() -> bool:
    """Register pillow-heif's Pillow opener, once, on first HEIF upload. False if absent.

    Registration is how Pillow plugins work (it adds "HEIF" to Pillow's registry for the
    process); it is done lazily here so importing this module, or any other, never
    imports pillow-heif. Embedded thumbnails, depth and auxiliary images are switched
    off: we never want a thumbnail (it may show an uncropped original) and need no more.
    libheif decodes on one thread instead of four: with four, every decode starts new
    native threads and glibc gives them fresh malloc arenas, so the process kept ~+250 MB
    after 20 HEIC decodes against ~+40 MB with one, for no speed difference measurable
    on the 2-core host (the picture pool decodes one picture at a time anyway).
    """
    global _heif_registered
    if _heif_registered:
        return True
    with _heif_lock:
        if not _heif_registered:
            if not heic_supported():
                return False
            pillow_heif = importlib.import_module("pillow_heif")
            pillow_heif.register_heif_opener(
                thumbnails=False, depth_images=False, aux_images=False, decode_threads=1
            )
            _heif_registered = True
    return True


# ------------------------------------------------------------------------------ sniffing

_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
)
_GENERIC_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

# (signature, offset, name) of formats we recognise but refuse.
_OTHER_SIGNATURES: Final[tuple[tuple[bytes, int, str], ...]] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),  # BigTIFF
    (b"MM\x00+", 0, "TIFF"),
    (b"BM", 0, "BMP"),
    (b"%PDF-", 0, "PDF"),
    (b"%!PS", 0, "EPS"),
    (b"\xc5\xd0\xd3\xc6", 0, "EPS"),
    (b"8BPS", 0, "PSD"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"\x00\x00\x02\x00", 0, "CUR"),
    (b"icns", 0, "ICNS"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEGXL"),
    (b"\xff\x0a", 0, "JPEGXL"),
    (b"qoif", 0, "QOI"),
    (b"DDS ", 0, "DDS"),
    (b"gimp xcf", 0, "XCF"),
)
_PNM_RE: Final = re.compile(rb"P[1-7]\s")
_XML_RE: Final = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:\?xml|svg)", re.IGNORECASE)


def _sniff(head: bytes) -> str | None:
    """Name the format from the first bytes: a whitelisted name, another name, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(head)
    for signature, offset, name in _OTHER_SIGNATURES:
        if head.startswith(signature, offset):
            return name
    if _PNM_RE.match(head):
        return "PNM"
    if _XML_RE.match(head):
        return "SVG/XML"
    return None


def _sniff_isobmff(head: bytes) -> str:
    box_size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in _AVIF_BRANDS:
        return "AVIF"
    if major in _HEIF_BRANDS:
        return "HEIF"
    if major in _GENERIC_HEIF_BRANDS:
        return "AVIF" if compatible & _AVIF_BRANDS else "HEIF"
    return "ISOBMFF"  # MP4/MOV video and other ISO media files


# ------------------------------------------------------------------------------ pipeline


def sanitise_photo(
    data: bytes,
    *,
    max_side: int = MAX_SIDE,
    min_side: int = MIN_SIDE,
    max_bytes: int = MAX_INPUT_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
    quality: int = 85,
) -> SanitisedPhoto:
    """Turn an uploaded image into a metadata-free, upright baseline JPEG.

    Raises :class:`PhotoRejected` for anything a resident may send (too big, not an
    image, unsupported, bomb, corrupt, HEIC without pillow-heif) and
    :class:`SanitiserSelfCheckError` if the output failed its metadata self-check.
    """
    if min(max_side, max_bytes, max_pixels, max_decoded_bytes) < 1:
        raise ValueError("max_side, max_bytes, max_pixels and max_decoded_bytes must be positive")
    if not 1 <= quality <= 95:
        raise ValueError("quality must be between 1 and 95")

    size = len(data)
    if size > max_bytes:
        raise PhotoRejected("too_large", f"{size} bytes exceeds the limit of {max_bytes}")
    head = bytes(data[:64])
    kind = _sniff(head)
    if kind is None:
        raise PhotoRejected("not_image", "no known image signature")
    if kind not in _WHITELIST:
        raise PhotoRejected("unsupported_format", f"{kind} is not accepted")
    if kind == "HEIF" and not (heic_supported() and _register_heif_opener()):
        raise PhotoRejected("heic_unavailable", "HEIF/HEIC needs the optional pillow-heif")

    # Parsing and decoding resident data: every failure here is the upload's fault.
    try:
        decoded = _decode(
            data, kind, max_side, min(min_side, max_side), max_pixels, max_decoded_bytes
        )
    except PhotoRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise PhotoRejected("bomb", str(exc)) from None
    except Image.DecompressionBombWarning as exc:  # only if a warnings filter says "error"
        raise PhotoRejected("bomb", str(exc)) from None
    except UnidentifiedImageError:
        # The signature matched, yet the whitelisted parser refused the header.
        raise PhotoRejected("corrupt", f"malformed {kind} header") from None
    except MemoryError:
        raise PhotoRejected("bomb", f"out of memory decoding {kind}") from None
    except _DECODE_ERRORS as exc:
        log.debug("photo rejected as corrupt", exc_info=True)
        message = f"malformed {kind} data ({type(exc).__name__}: {exc})"
        raise PhotoRejected("corrupt", message[:300]) from None
    # From here on we only work on decoded pixels: an exception would be our bug.
    return _encode(decoded, quality)


@dataclass(slots=True)
class _Decoded:
    # Loaded, mode RGB or RGBA, stored (not yet upright) orientation. _encode takes it
    # out (sets None) so the full-size pixels can be freed as soon as they are resized.
    image: Image.Image | None
    target: tuple[int, int]  # output size before transposition
    orientation: int
    source_format: SourceFormat


def _pixel_limit(max_pixels: int) -> int:
    # Pillow warns (DecompressionBombWarning) above MAX_IMAGE_PIXELS and raises above twice
    # that. We treat its warning threshold as a hard limit too: this is the thread-safe way
    # to "turn the warning into an error" (warnings.catch_warnings/filters are process-wide
    # and not thread-safe; a filter could leak into other threads).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pillow_limit > 0:
        return min(max_pixels, int(pillow_limit))
    return max_pixels


def _decode(
    data: bytes, kind: str, max_side: int, min_side: int, max_pixels: int,
    max_decoded_bytes: int,
) -> _Decoded:
    if kind == "HEIF":
        _check_isobmff_boxes(data)
    if kind == "JPEG":
        _check_jpeg_scans(data)
    # Opening reads the header only. No `with`: closing an image frees its pixels, and the
    # BytesIO needs no closing.
    if kind == "JPEG":
        # Through the JPEG plugin's class rather than Image.open, whose decompression-bomb
        # check refuses any image over 2 x MAX_IMAGE_PIXELS (179 MP) from its header: that
        # includes 200 MP phone photos, which we only ever decode at 1/8 scale. Our own
        # checks below take its place. An MPO (multi-picture JPEG from many phones) opens
        # as the plain JPEG of its first frame, the photo; no other frame is ever decoded.
        im: Image.Image = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
        limit = max_pixels
    else:
        # `formats` limits Pillow to the sniffed, whitelisted parser.
        im = Image.open(io.BytesIO(data), formats=[kind])
        limit = _pixel_limit(max_pixels)
    if im.format != kind:
        raise PhotoRejected("unsupported_format", f"{im.format} is not accepted")

    width, height = im.size
    if width < 1 or height < 1:
        raise PhotoRejected("corrupt", f"invalid dimensions {width}x{height}")
    if width * height > limit:
        raise PhotoRejected(
            "bomb", f"{width}x{height} = {width * height} pixels exceeds the limit of {limit}"
        )

    target = _target_size(width, height, max_side)  # stored orientation
    if kind == "JPEG" and target != (width, height):
        target = _dct_scaled_size(width, height, max_side, min_side) or target
        # Decode with libjpeg's DCT scaling (1/2, 1/4, 1/8): Pillow picks the smallest
        # scale still at least `target`, so the resize afterwards only ever shrinks.
        # This only sets up the decoder: im.size becomes the scaled size.
        im.draft(im.mode, target)
    needed = _decode_budget(im, kind, data, (width, height))
    if needed > max_decoded_bytes:
        raise PhotoRejected(
            "bomb",
            f"{width}x{height} {im.mode} needs {needed} bytes of pixels to decode at "
            f"{im.width}x{im.height}, over the budget of {max_decoded_bytes}",
        )
    # Only now: reading a PNG's EXIF decodes the whole image (an eXIf chunk may follow
    # the pixel data).
    orientation = _orientation(im)
    im.load()  # raises on truncated data: LOAD_TRUNCATED_IMAGES is never changed
    return _Decoded(_to_rgb_or_rgba(im), target, orientation, _WHITELIST[kind])


# A progressive JPEG has about ten scans; libjpeg sets no limit, and each scan is another
# pass over the whole image: a small file with thousands of tiny scans would hold the one
# picture worker (and every resident's pictures behind it) for a long time.
MAX_JPEG_SCANS: Final = 100


def _check_jpeg_scans(data: bytes) -> None:
    """Refuse a JPEG with too many scans. FF DA (start of scan) cannot occur inside
    entropy-coded data (a data FF is always followed by 00 or a restart marker), so counting
    it counts the scans (plus those of a thumbnail embedded in EXIF, which is harmless)."""
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise PhotoRejected("bomb", f"{scans} JPEG scans exceed the limit of {MAX_JPEG_SCANS}")


def _decode_budget(
    im: Image.Image, kind: str, data: bytes, full_size: tuple[int, int]
) -> int:
    """Bytes of pixel memory decoding ``im`` (as opened, after any ``draft``) will hold at
    once: the decoded image, the conversion to RGB/RGBA, and for multi-scan JPEGs the
    coefficient buffer of the whole image."""
    needed = im.width * im.height * _conversion_bytes_per_pixel(im)
    if kind == "JPEG" and _jpeg_multi_scan(im, data):
        needed += _jpeg_coefficient_bytes(full_size, getattr(im, "layer", None))
    return needed


def _bytes_per_pixel(mode: str) -> int:
    # Pillow's storage: 1-byte modes, 16-bit integer modes, and 4 bytes for all others
    # (RGB is kept as RGBX).
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _conversion_bytes_per_pixel(im: Image.Image) -> int:
    """Peak bytes a pixel while ``_to_rgb_or_rgba`` runs: the source stays referenced
    while each copy is made (e.g. P -> RGBA: 1 + 4 bytes)."""
    held = _bytes_per_pixel(im.mode)
    if im.mode in ("RGB", "RGBA"):
        return held
    if im.mode.startswith("I"):
        return held + 8  # the source, its 32-bit copy and the scaled copy (then L, RGB)
    return held + 4  # the source and its RGB/RGBA copy


# Progressive JPEGs (and sequential ones whose first scan lacks a component) are decoded
# in several passes over the whole image: libjpeg keeps every DCT coefficient of every
# component in memory, 2 bytes each, however small the scale requested.
_JPEG_COEFFICIENT_BYTES: Final = 2


def _jpeg_multi_scan(im: Image.Image, data: bytes) -> bool:
    if im.info.get("progressive"):
        return True
    layers = getattr(im, "layer", None) or []
    scan_components = _jpeg_first_scan_components(data)
    return scan_components is None or scan_components < len(layers)


def _jpeg_first_scan_components(data: bytes) -> int | None:
    """Number of components in the first scan (SOS), or None if the header is unusual."""
    pos = 2
    while pos + 4 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return data[pos + 4]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        pos += 2 + length
    return None


def _jpeg_coefficient_bytes(
    size: tuple[int, int], layers: list[tuple[str, int, int, int]] | None
) -> int:
    """Size of libjpeg's whole-image coefficient buffer (blocks rounded up to MCUs)."""
    width, height = size
    sampling = [(h, v) for _, h, v, _ in layers or [] if h > 0 and v > 0]
    if not sampling:
        sampling = [(1, 1)] * 4  # unknown: as many full-resolution components as possible
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    blocks = 0
    for h, v in sampling:
        across = _ceil_div(_ceil_div(width * h, 8 * h_max), h) * h
        down = _ceil_div(_ceil_div(height * v, 8 * v_max), v) * v
        blocks += across * down
    return blocks * 64 * _JPEG_COEFFICIENT_BYTES


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _encode(decoded: _Decoded, quality: int) -> SanitisedPhoto:
    # Rebuild from raw pixels: downscale (and flatten alpha) into plain RGB bytes, then
    # make a brand-new image from them. Its info dict is empty, so nothing from the upload
    # (EXIF, XMP, ICC, comments, thumbnails, MPO frames...) can reach the encoder.
    image, decoded.image = decoded.image, None
    if image is None:
        raise RuntimeError("decoded image already consumed")
    bands = _downscaled_rgb_bands(image, decoded.target)
    del image  # last reference to the full-size pixels
    clean = Image.frombytes("RGB", decoded.target, b"".join(bands))
    del bands
    transpose = _ORIENTATION_TRANSPOSE.get(decoded.orientation)
    if transpose is not None:
        # Upright after downscaling (cheaper on the smaller image); a transposed copy
        # of `clean` inherits its (empty) info dict.
        clean = clean.transpose(transpose)
    out = io.BytesIO()
    clean.save(
        out,
        format="JPEG",
        quality=quality,
        subsampling="4:2:0",
        progressive=False,  # baseline
        optimize=False,  # +20 ms on 2560x1920 for a ~5 % smaller file: not worth it
        # Explicitly empty, so no default or fallback (JPEG falls back to im.info's
        # "comment") can ever add a segment:
        exif=b"",
        icc_profile=None,
        comment=b"",
        xmp=b"",
    )
    jpeg = out.getvalue()
    assert_clean_jpeg(jpeg, expected_size=clean.size)
    return SanitisedPhoto(
        data=jpeg,
        width=clean.width,
        height=clean.height,
        source_format=decoded.source_format,
    )


def _check_isobmff_boxes(data: bytes) -> None:
    """Refuse a truncated HEIF file: every top-level box must fit in the data.

    libheif (1.23, through pillow-heif) decodes a HEIC whose tile data is cut off without
    any error, painting the missing tiles green; a cut-off upload must be "corrupt".
    (A truncated file whose last box declares size 0, "up to the end", cannot be detected
    this way; phones write explicit sizes.)
    """
    pos, total = 0, len(data)
    while pos < total:
        if pos + 8 > total:
            raise PhotoRejected("corrupt", f"truncated HEIF: partial box header at {pos}")
        size = int.from_bytes(data[pos : pos + 4], "big")
        header = 8
        if size == 1:  # 64-bit "largesize" follows the type
            if pos + 16 > total:
                raise PhotoRejected("corrupt", f"truncated HEIF: partial box header at {pos}")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:  # box extends to the end of the file
            return
        if size < header:
            raise PhotoRejected("corrupt", f"malformed HEIF: box of {size} bytes at {pos}")
        if pos + size > total:
            box_type = data[pos + 4 : pos + 8].decode("latin-1")
            raise PhotoRejected(
                "corrupt",
                f"truncated HEIF: box {box_type!r} needs {pos + size} bytes, {total} present",
            )
        pos += size


def _orientation(im: Image.Image) -> int:
    """EXIF Orientation (1-8), read the way ImageOps.exif_transpose reads it."""
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        # Unreadable EXIF is no reason to refuse the photo: it is discarded anyway.
        log.debug("unreadable EXIF, orientation ignored", exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _dct_scaled_size(
    width: int, height: int, max_side: int, min_side: int
) -> tuple[int, int] | None:
    """The size of the largest 1/2, 1/4 or 1/8 DCT-scaled decode whose long side fits in
    [min_side, max_side], if any (libjpeg rounds scaled dimensions up)."""
    for denominator in (2, 4, 8):
        scaled = (-(-width // denominator), -(-height // denominator))
        if max(scaled) <= max_side:
            return scaled if max(scaled) >= min_side else None
    return None


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max(width, height) <= max_side:
        return width, height
    if width >= height:
        return max_side, max(1, round(height * max_side / width))
    return max(1, round(width * max_side / height)), max_side


def _to_rgb_or_rgba(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        return img
    if mode.startswith("I"):
        # 16-bit greyscale (PNG): Pillow's I;16 -> L conversion clips at 255 (white),
        # so scale 0..65535 down to 0..255 first.
        img = img.convert("I").point(lambda value: value * (1 / 257)).convert("L")
        return img.convert("RGB")
    if mode in ("LA", "La", "PA", "RGBa") or "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr...


def _downscaled_rgb_bands(img: Image.Image, size: tuple[int, int]) -> list[bytes]:
    """Raw RGB bytes of ``img`` resized to ``size`` (alpha flattened onto white), as a
    list of horizontal bands to concatenate."""
    if img.size != size:
        factor = min(img.width / size[0], img.height / size[1])
        reduce_by = int(factor / _REDUCING_GAP)
        if reduce_by >= 2:
            img = img.reduce(reduce_by)
    if img.size == size or size[0] * size[1] < _PARALLEL_MIN_PIXELS or _cpu_count() < 2:
        return [_rgb_band(img, size, None)]

    # Two horizontal bands, one per thread (Pillow releases the GIL while resampling and
    # converting). Each band is resampled from the matching source rows (`box`; the filter
    # still reads the rows around it), so the result equals one resize up to rounding.
    split = size[1] // 2
    scale_y = img.height / size[1]
    boxes = (
        (0.0, 0.0, float(img.width), split * scale_y),
        (0.0, split * scale_y, float(img.width), float(img.height)),
    )
    sizes = ((size[0], split), (size[0], size[1] - split))
    results: list[bytes] = [b"", b""]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = _rgb_band(img, sizes[index], boxes[index])
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    helper = threading.Thread(target=work, args=(1,), name="photo-resize", daemon=True)
    helper.start()
    work(0)
    helper.join()
    if errors:
        raise errors[0]
    return results


def _rgb_band(
    img: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float] | None
) -> bytes:
    if img.size != size or box is not None:
        img = img.resize(size, _RESAMPLE, box=box)
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (*_WHITE, 255))
        img = Image.alpha_composite(background, img).convert("RGB")
    return img.tobytes()


@functools.cache
def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------ self-check

# What Pillow reports for a JPEG whose only APPn segment is a plain JFIF APP0.
_ALLOWED_INFO_KEYS: Final = frozenset({"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"})
_FORBIDDEN_SIGNATURES: Final = (
    b"Exif",
    b"http://ns.adobe.com/xap",
    b"xmpmeta",
    b"ICC_PROFILE",
    b"Photoshop",
    b"8BIM",
    b"Adobe",
    b"MPF",
)
# Markers allowed before the scan: APP0 (JFIF), DQT, SOF0 (baseline), DHT, DRI.
_ALLOWED_HEADER_MARKERS: Final = frozenset({0xE0, 0xDB, 0xC0, 0xC4, 0xDD})
# Inside entropy-coded data the only legal 0xFF sequences are 0xFF00 and RST0-7; the
# first other marker must be the final EOI.
_MARKER_IN_SCAN_RE: Final = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def assert_clean_jpeg(data: bytes, *, expected_size: tuple[int, int] | None = None) -> None:
    """Raise SanitiserSelfCheckError unless ``data`` is a bare baseline JFIF JPEG.

    Only SOI, one 16-byte JFIF APP0 (no thumbnail), DQT, SOF0, DHT, DRI, a single SOS with
    its entropy-coded data and a final EOI are allowed: no APP1-APP15 (EXIF, XMP, ICC,
    Photoshop/IPTC, Adobe, MPF), no COM, nothing after EOI.
    """

    def fail(why: str) -> SanitiserSelfCheckError:
        return SanitiserSelfCheckError(f"output JPEG failed the metadata self-check: {why}")

    if not data.startswith(b"\xff\xd8"):
        raise fail("no SOI")
    pos = 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise fail(f"bad segment at offset {pos}")
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # SOS
            scan_start = pos + 2 + length
            break
        if marker not in _ALLOWED_HEADER_MARKERS:
            raise fail(f"marker 0xFF{marker:02X} at offset {pos}")
        if marker == 0xE0 and not (length == 16 and data[pos + 4 : pos + 9] == b"JFIF\x00"):
            raise fail("APP0 is not a bare JFIF header")
        pos += 2 + length
    header = data[:scan_start]
    for signature in _FORBIDDEN_SIGNATURES:
        if signature in header:
            raise fail(f"{signature!r} in the header")
    end = _MARKER_IN_SCAN_RE.search(data, scan_start)
    if end is None or end.start() != len(data) - 2 or data[-2:] != b"\xff\xd9":
        raise fail("more than one scan, or data after EOI")

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as check:
            applist = [name for name, _ in getattr(check, "applist", [])]
            extra = set(check.info) - _ALLOWED_INFO_KEYS
            exif_tags = len(check.getexif())
            fmt, size = check.format, check.size
    except _DECODE_ERRORS as exc:
        raise fail(f"cannot re-open ({type(exc).__name__})") from None
    if fmt != "JPEG" or applist != ["APP0"]:
        raise fail(f"format {fmt}, segments {applist}")
    if extra:
        raise fail(f"info keys {sorted(extra)}")
    if exif_tags:
        raise fail("EXIF tags present")
    if expected_size is not None and size != expected_size:
        raise fail(f"size {size} != {expected_size}")
