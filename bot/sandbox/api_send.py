"""Bot API methods that put a message into a chat without uploading a file.

sendMessage, sendLocation, forwardMessage, copyMessage and sendChatAction. Every send passes
the chat checks (blocked, kicked, migrated, never started), then validation, then flood
control, in that order.
"""

from __future__ import annotations

import copy
from typing import Any

from .compose import (
    chat_ref,
    content_with,
    formatted,
    reply_fields,
    reply_markup,
    required_int,
)
from .errors import bad_request
from .models import JSON, ChatState, StoredMessage
from .params import Params
from .registry import method
from .world import World, origin_of

CONTENT_KEYS = (
    "text",
    "entities",
    "photo",
    "document",
    "caption",
    "caption_entities",
    "location",
    "contact",
    "venue",
    "sticker",
    "video",
    "audio",
    "voice",
    "animation",
    "link_preview_options",
    "has_media_spoiler",
    "show_caption_above_media",
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def send_bot_message(
    world: World, state: ChatState, p: Params, content: JSON, markup: JSON | None
) -> JSON:
    """Resolve the reply target, count the send against flood limits, store the message."""
    content = {**reply_fields(world, state, p), **content}
    if p.boolean("protect_content"):
        content["has_protected_content"] = True
    world.flood.acquire(state.id, world.is_group(state))
    stored = world.store_message(state, world.bot, content, markup=markup)
    return copy.deepcopy(stored.data)


@method("sendMessage")
async def send_message(world: World, p: Params) -> Any:
    """Send a text message (HTML/MarkdownV2 parsed, 1-4096 characters)."""
    state = world.writable_chat(chat_ref(p))
    text, entities = formatted(p, "text", "entities", caption=False)
    content = content_with("text", text, entities)
    preview = p.json("link_preview_options")
    if isinstance(preview, dict) and preview:
        content["link_preview_options"] = preview
    return send_bot_message(world, state, p, content, reply_markup(p))


@method("sendLocation")
async def send_location(world: World, p: Params) -> Any:
    """Send a map point."""
    state = world.writable_chat(chat_ref(p))
    latitude, longitude = p.number("latitude"), p.number("longitude")
    if latitude is None or not -90 <= latitude <= 90:
        raise bad_request("wrong latitude")
    if longitude is None or not -180 <= longitude <= 180:
        raise bad_request("wrong longitude")
    location: JSON = {"latitude": latitude, "longitude": longitude}
    accuracy = p.number("horizontal_accuracy")
    if accuracy is not None:
        location["horizontal_accuracy"] = accuracy
    return send_bot_message(world, state, p, {"location": location}, reply_markup(p))


@method("sendChatAction")
async def send_chat_action(world: World, p: Params) -> Any:
    """Show "typing…" and the like; the web page displays the last action."""
    state = world.writable_chat(chat_ref(p))
    action = p.text("action") or ""
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    state.last_action = action
    state.last_action_at = world.clock()
    world.activity.notify()
    return True


def source_message(world: World, p: Params, error: str) -> StoredMessage:
    """The message a forward or copy starts from."""
    source = world.lookup_chat(chat_ref(p, "from_chat_id"))
    message_id = required_int(p, "message_id", "message_id is empty")
    stored = source.live_message(message_id)
    if stored is None:
        raise bad_request(error)
    if not any(key in stored.data for key in CONTENT_KEYS):
        raise bad_request("message can't be forwarded")
    if stored.data.get("has_protected_content"):
        raise bad_request("message can't be forwarded")
    return stored


def _content_of(stored: StoredMessage) -> JSON:
    return {key: copy.deepcopy(stored.data[key]) for key in CONTENT_KEYS if key in stored.data}


@method("forwardMessage")
async def forward_message(world: World, p: Params) -> Any:
    """Forward a message: the copy shows the original sender in `forward_origin`."""
    state = world.writable_chat(chat_ref(p))
    original = source_message(world, p, "message to forward not found")
    content = {"forward_origin": origin_of(original.data), **_content_of(original)}
    world.flood.acquire(state.id, world.is_group(state))
    stored = world.store_message(state, world.bot, content)
    return copy.deepcopy(stored.data)


@method("copyMessage")
async def copy_message(world: World, p: Params) -> Any:
    """Copy a message without a link to the original; answers with a `MessageId`."""
    state = world.writable_chat(chat_ref(p))
    original = source_message(world, p, "message to copy not found")
    content = _content_of(original)
    if "caption" in p.values and "text" not in content:
        content.pop("caption", None)
        content.pop("caption_entities", None)
        caption, entities = formatted(p, "caption", "caption_entities", caption=True)
        content.update(content_with("caption", caption, entities))
    result = send_bot_message(world, state, p, content, reply_markup(p))
    return {"message_id": result["message_id"]}
