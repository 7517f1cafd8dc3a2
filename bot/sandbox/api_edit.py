"""Bot API methods that change or remove existing messages, and answerCallbackQuery."""

from __future__ import annotations

import copy
from typing import Any

from .compose import chat_ref, content_with, formatted, reply_markup, required_int
from .errors import bad_request
from .models import JSON, ChatState, StoredMessage
from .params import Params
from .registry import method
from .world import World, now

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MEDIA_KEYS = ("photo", "document", "video", "audio", "animation", "voice")


def _editable(world: World, p: Params) -> tuple[ChatState, StoredMessage]:
    if p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    state = world.writable_chat(chat_ref(p))
    message_id = required_int(p, "message_id", "message to edit not found")
    stored = state.live_message(message_id)
    if stored is None:
        raise bad_request("message to edit not found")
    if not stored.from_bot:
        raise bad_request("message can't be edited")
    return state, stored


def _apply(world: World, stored: StoredMessage, changes: JSON, markup: JSON | None) -> Any:
    """Replace content and markup; identical content and markup is "not modified"."""
    updated = copy.deepcopy(stored.data)
    for key, value in changes.items():
        if value:
            updated[key] = value
        else:
            updated.pop(key, None)
    if markup is not None and "inline_keyboard" in markup:
        updated["reply_markup"] = markup
    else:
        updated.pop("reply_markup", None)
    world.resolve_mentions(updated)
    if updated == stored.data:
        raise bad_request(NOT_MODIFIED)
    updated["edit_date"] = now()
    stored.data = updated
    stored.markup = markup
    world.activity.notify()
    return copy.deepcopy(updated)


@method("editMessageText")
async def edit_message_text(world: World, p: Params) -> Any:
    """Change the text (and markup) of a bot message."""
    _, stored = _editable(world, p)
    if "text" not in stored.data:
        raise bad_request("there is no text in the message to edit")
    text, entities = formatted(p, "text", "entities", caption=False)
    changes: JSON = {"text": text, "entities": entities}
    preview = p.json("link_preview_options")
    if isinstance(preview, dict) and preview:
        changes["link_preview_options"] = preview
    return _apply(world, stored, changes, reply_markup(p))


@method("editMessageCaption")
async def edit_message_caption(world: World, p: Params) -> Any:
    """Change the caption (and markup) of a bot media message."""
    _, stored = _editable(world, p)
    if not any(key in stored.data for key in MEDIA_KEYS):
        raise bad_request("there is no caption in the message to edit")
    caption, entities = formatted(p, "caption", "caption_entities", caption=True)
    changes = content_with("caption", caption, entities)
    changes.setdefault("caption", "")
    changes.setdefault("caption_entities", [])
    return _apply(world, stored, changes, reply_markup(p))


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, p: Params) -> Any:
    """Change or remove the inline keyboard of a bot message."""
    _, stored = _editable(world, p)
    return _apply(world, stored, {}, reply_markup(p))


@method("deleteMessage")
async def delete_message(world: World, p: Params) -> Any:
    """Delete a message: the bot's own always, others' in private chats or as group admin."""
    state = world.lookup_chat(chat_ref(p))
    message_id = required_int(p, "message_id", "message identifier is not specified")
    stored = state.live_message(message_id)
    if stored is None:
        raise bad_request("message to delete not found")
    allowed = stored.from_bot or not world.is_group(state) or world.bot_is_admin(state)
    if not allowed:
        raise bad_request("message can't be deleted")
    stored.deleted = True
    world.activity.notify()
    return True


@method("deleteMessages")
async def delete_messages(world: World, p: Params) -> Any:
    """Delete several messages; missing ones are skipped as Telegram does."""
    state = world.lookup_chat(chat_ref(p))
    ids = p.json("message_ids", "can't parse message_ids JSON array")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids is empty")
    for message_id in ids:
        stored = state.live_message(int(message_id))
        if stored is not None and (stored.from_bot or not world.is_group(state)
                                   or world.bot_is_admin(state)):
            stored.deleted = True
    world.activity.notify()
    return True


@method("answerCallbackQuery")
async def answer_callback_query(world: World, p: Params) -> Any:
    """Answer a button press once, within the time Telegram allows."""
    query = world.callbacks.get(p.text("callback_query_id") or "")
    too_old = query is None or query.answer is not None
    if query is not None and world.clock() - query.created > world.callback_timeout:
        too_old = True
    if too_old or query is None:
        raise bad_request(
            "query is too old and response timeout expired or query ID is invalid"
        )
    text = p.text("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answer = {"text": text, "show_alert": p.boolean("show_alert")}
    if p.has("url"):
        query.answer["url"] = p.text("url")
    world.activity.notify()
    return True
