"""Bot API methods with files: sendPhoto, sendDocument, sendMediaGroup, getFile.

A file arrives either as a multipart part (directly under the parameter's name, or under the
name an `attach://name` reference points to) or as the `file_id` of a stored file. The bytes
the bot uploads are kept exactly: the largest `PhotoSize` of an uploaded photo and every
document download byte-for-byte what the bot sent.
"""

from __future__ import annotations

import asyncio
import copy
import mimetypes
import secrets
from typing import Any

from .api_send import send_bot_message
from .compose import chat_ref, content_with, formatted, reply_fields, reply_markup
from .errors import bad_request
from .files import MAX_UPLOAD, bot_photo, document_json, file_json, photo_size
from .models import JSON, ChatState
from .params import Params, Upload
from .registry import method
from .world import World

GENERIC_MIME = "application/octet-stream"


def _source(p: Params, value: Any, field: str) -> Upload | str:
    """The upload or file id a file parameter refers to."""
    if isinstance(value, str) and value.startswith("attach://"):
        upload = p.upload(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request("can't parse InputMedia: media not found")
        return upload
    if value is None or value == "":
        upload = p.upload(field)
        if upload is None:
            raise bad_request(f"there is no {field} in the request")
        return upload
    text = str(value)
    if text.lower().startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content")
    return text


def _checked_upload(upload: Upload) -> bytes:
    if not upload.data:
        raise bad_request("file must be non-empty")
    if len(upload.data) > MAX_UPLOAD:
        raise bad_request("file is too big")
    return upload.data


async def photo_sizes(world: World, source: Upload | str) -> list[JSON]:
    """The `PhotoSize` array for an uploaded photo or a reused photo file id."""
    if isinstance(source, Upload):
        renditions = await asyncio.to_thread(bot_photo, _checked_upload(source))
        return world.files.add_photo(renditions)
    stored = world.files.get(source)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != "photo":
        raise bad_request("type of file mismatch")
    return copy.deepcopy(world.files.photo_set(source) or [photo_size(stored)])


def document(world: World, source: Upload | str, file_name: str | None = None) -> JSON:
    """The `Document` object for an uploaded file or a reused document file id."""
    if isinstance(source, Upload):
        data = _checked_upload(source)
        name = file_name or source.filename
        mime = source.content_type
        if mime == GENERIC_MIME:
            mime = mimetypes.guess_type(name)[0] or GENERIC_MIME
        return world.files.add_document(data, name, mime)
    stored = world.files.get(source)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if stored.kind != "document":
        raise bad_request("type of file mismatch")
    return document_json(stored)


def _media_extras(p: Params) -> JSON:
    extras: JSON = {}
    if p.boolean("has_spoiler"):
        extras["has_media_spoiler"] = True
    if p.boolean("show_caption_above_media"):
        extras["show_caption_above_media"] = True
    return extras


@method("sendPhoto")
async def send_photo(world: World, p: Params) -> Any:
    """Send a photo (upload or file id) with an optional caption (≤ 1024 characters)."""
    state = world.writable_chat(chat_ref(p))
    caption, entities = formatted(p, "caption", "caption_entities", caption=True)
    markup = reply_markup(p)
    sizes = await photo_sizes(world, _source(p, p.values.get("photo"), "photo"))
    content = {"photo": sizes, **content_with("caption", caption, entities), **_media_extras(p)}
    return send_bot_message(world, state, p, content, markup)


@method("sendDocument")
async def send_document(world: World, p: Params) -> Any:
    """Send a file; its bytes are kept exactly."""
    state = world.writable_chat(chat_ref(p))
    caption, entities = formatted(p, "caption", "caption_entities", caption=True)
    markup = reply_markup(p)
    doc = document(world, _source(p, p.values.get("document"), "document"))
    content = {"document": doc, **content_with("caption", caption, entities)}
    return send_bot_message(world, state, p, content, markup)


async def _album_item(world: World, p: Params, item: Any) -> JSON:
    if not isinstance(item, dict) or item.get("type") not in ("photo", "document"):
        raise bad_request("can't parse InputMedia JSON object")
    item_params = Params({key: value for key, value in item.items() if key != "media"})
    caption, entities = formatted(item_params, "caption", "caption_entities", caption=True)
    source = _source(p, item.get("media"), str(item["type"]))
    if item["type"] == "photo":
        content: JSON = {"photo": await photo_sizes(world, source)}
    else:
        content = {"document": document(world, source)}
    content.update(content_with("caption", caption, entities))
    if item.get("has_spoiler"):
        content["has_media_spoiler"] = True
    return content


async def _album(world: World, p: Params) -> list[JSON]:
    media = p.json("media", "can't parse media JSON object")
    if not isinstance(media, list):
        raise bad_request("can't parse media JSON object")
    if not 2 <= len(media) <= 10:
        raise bad_request("media group must include 2-10 items")
    kinds = {item.get("type") for item in media if isinstance(item, dict)}
    if "document" in kinds and len(kinds) > 1:
        raise bad_request("document can't be mixed with other media types")
    return [await _album_item(world, p, item) for item in media]


@method("sendMediaGroup")
async def send_media_group(world: World, p: Params) -> Any:
    """Send 2-10 photos or documents as one album; counts once per item for flood limits."""
    state: ChatState = world.writable_chat(chat_ref(p))
    contents = await _album(world, p)
    reply = reply_fields(world, state, p)
    world.flood.acquire(state.id, world.is_group(state), units=len(contents))
    group_id = str(13_000_000_000_000_000 + secrets.randbelow(10**15))
    results = []
    for item in contents:
        content = {**reply, **item, "media_group_id": group_id}
        stored = world.store_message(state, world.bot, content)
        results.append(copy.deepcopy(stored.data))
    return results


@method("getFile")
async def get_file(world: World, p: Params) -> Any:
    """The `File` object with a `file_path` for the download route (≤ 20 MB)."""
    stored = world.files.get(p.text("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    return file_json(stored)
