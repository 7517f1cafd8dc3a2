"""Stored files: ids, paths, bytes, and photo processing as Telegram does it.

A photo a person sends "as photo" is recompressed by Telegram: the sandbox decodes it and
re-encodes JPEG renditions (90/320/800/1280 px on the longest side, never larger than the
original) built from pixels only, so no EXIF, GPS, ICC profile or comment survives. A
document keeps its exact bytes. A photo the bot uploads keeps its exact bytes as the largest
size, so tests can compare what the bot sent.
"""

from __future__ import annotations

import io
import mimetypes
import secrets
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from .errors import bad_request
from .models import JSON, StoredFile

PHOTO_SIDES = (90, 320, 800, 1280)
MAX_DOWNLOAD = 20 * 1024 * 1024
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
_KIND_PREFIX = {"photo": "AgACAgUAAxkBAAI", "document": "BQACAgUAAxkBAAI"}
_KIND_FOLDER = {"photo": "photos", "document": "documents"}


@dataclass
class Rendition:
    """One size of a photo: JPEG bytes and pixel dimensions."""

    data: bytes
    width: int
    height: int


def _open_image(data: bytes, *, load: bool = True) -> Image.Image:
    """Open (and by default decode) an image; anything undecodable is IMAGE_PROCESS_FAILED."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if load:
                image.load()
        except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise bad_request("IMAGE_PROCESS_FAILED") from None
    return image


def _clean_pixels(image: Image.Image) -> Image.Image:
    upright = ImageOps.exif_transpose(image) or image
    rgb = upright.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def _encode(image: Image.Image) -> Rendition:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=87)
    return Rendition(buffer.getvalue(), image.width, image.height)


def _shrunk(image: Image.Image, longest: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return copy


def _sides(longest: int) -> list[int]:
    sides = [side for side in PHOTO_SIDES[:-1] if side < longest]
    sides.append(min(longest, PHOTO_SIDES[-1]))
    return sides


def recompress(data: bytes) -> list[Rendition]:
    """The renditions Telegram makes of a photo sent "as photo" (smallest first)."""
    source = _clean_pixels(_open_image(data))
    renditions: list[Rendition] = []
    for side in reversed(_sides(max(source.size))):
        source = _shrunk(source, side)
        renditions.append(_encode(source))
    return list(reversed(renditions))


def check_photo(data: bytes) -> Image.Image:
    """Validate a photo the bot uploads (Bot API sendPhoto limits) and return it decoded."""
    if not data:
        raise bad_request("file must be non-empty")
    if len(data) > MAX_PHOTO_UPLOAD:
        raise bad_request("PHOTO_SAVE_FILE_INVALID")
    image = _open_image(data, load=False)
    width, height = image.size
    if width + height > 10000 or max(width, height) > 20 * max(min(width, height), 1):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return _open_image(data)


def bot_photo(data: bytes) -> list[Rendition]:
    """Renditions for a photo uploaded by the bot: thumbnails plus the exact upload."""
    clean = _clean_pixels(check_photo(data))
    width, height = clean.size
    smaller = [
        _encode(_shrunk(clean, side)) for side in PHOTO_SIDES[:-1] if side < max(width, height)
    ]
    return [*smaller, Rendition(data, width, height)]


class FileStore:
    """Every file the sandbox knows, by `file_id`, plus the size sets of photos."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._photo_sets: dict[str, list[JSON]] = {}
        self._counter = 0

    def add(
        self,
        kind: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        """Store bytes under fresh ids and a fresh `file_path`."""
        self._counter += 1
        extension = _extension(kind, mime_type, file_name)
        stored = StoredFile(
            file_id=_KIND_PREFIX.get(kind, "CQACAgUAAxkBAAI") + secrets.token_urlsafe(40),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            data=data,
            file_path=f"{_KIND_FOLDER.get(kind, 'files')}/file_{self._counter}{extension}",
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
        )
        self._files[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file with that id, if any."""
        return self._files.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """The file with that `file_path`, if any."""
        return self._by_path.get(file_path)

    def add_photo(self, renditions: list[Rendition]) -> list[JSON]:
        """Store all sizes of a photo and return its `PhotoSize` array."""
        sizes: list[JSON] = []
        for rendition in renditions:
            stored = self.add(
                "photo",
                rendition.data,
                mime_type="image/jpeg",
                width=rendition.width,
                height=rendition.height,
            )
            sizes.append(photo_size(stored))
        for size in sizes:
            self._photo_sets[size["file_id"]] = sizes
        return sizes

    def photo_set(self, file_id: str) -> list[JSON] | None:
        """The whole `PhotoSize` array a photo file id belongs to."""
        return self._photo_sets.get(file_id)

    def add_document(self, data: bytes, file_name: str | None, mime_type: str | None) -> JSON:
        """Store a document and return its `Document` object."""
        mime = mime_type or mimetypes.guess_type(file_name or "")[0]
        stored = self.add("document", data, mime_type=mime, file_name=file_name)
        return document_json(stored)


def photo_size(stored: StoredFile) -> JSON:
    """The `PhotoSize` object of a stored photo rendition."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": stored.width,
        "height": stored.height,
    }


def document_json(stored: StoredFile) -> JSON:
    """The `Document` object of a stored document."""
    data: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.file_name:
        data["file_name"] = stored.file_name
    if stored.mime_type:
        data["mime_type"] = stored.mime_type
    data["file_size"] = stored.size
    return data


def file_json(stored: StoredFile) -> JSON:
    """The `File` object `getFile` answers with."""
    if stored.size > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "file_path": stored.file_path,
    }


def _extension(kind: str, mime_type: str | None, file_name: str | None) -> str:
    if kind == "photo":
        return ".jpg"
    if file_name and "." in file_name:
        return "." + file_name.rsplit(".", 1)[-1].lower()[:8]
    return mimetypes.guess_extension(mime_type or "") or ""
