"""Checks and conversions shared by the sending and editing methods.

Text and captions go through parse modes, Telegram's whitespace trimming, length limits and
automatic entity detection; reply markups are validated (callback_data is 1-64 bytes of UTF-8);
reply targets are resolved from `reply_parameters` or the older `reply_to_message_id`; a reply
to a message of another chat carries `external_reply` with the original author, as on Telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .errors import bad_request
from .html_parse import HtmlParseError, parse_html
from .markdown_parse import MarkdownParseError, parse_markdown, parse_markdown_v2
from .models import JSON, ChatState
from .params import Params
from .text import MAX_CAPTION, MAX_TEXT, merge_detected, sort_entities, trim, utf16_len
from .world import World, external_reply, quoted

_PARSERS: dict[str, Callable[[str], tuple[str, list[JSON]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_MARKUP_ERROR = "can't parse reply keyboard markup JSON object"


def chat_ref(p: Params, name: str = "chat_id") -> int | str:
    """The chat a call names: an integer id or an `@username`."""
    value = p.values.get(name)
    if value is None or value == "":
        raise bad_request(f"{name} is empty")
    if isinstance(value, bool):
        raise bad_request("chat not found")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        return text


def required_int(p: Params, name: str, error: str) -> int:
    """An integer parameter that must be present."""
    value = p.integer(name)
    if value is None:
        raise bad_request(error)
    return value


def formatted(
    p: Params, field: str, entities_field: str, *, caption: bool
) -> tuple[str, list[JSON]]:
    """Text (or caption) after parse mode, trimming and limits, with its entities."""
    raw = p.text(field) or ""
    text, entities = _parse(raw, p.text("parse_mode"), p.json(entities_field))
    text, entities = trim(text, entities)
    if caption:
        if len(text) > MAX_CAPTION:
            raise bad_request("message caption is too long")
    elif not text:
        raise bad_request("message text is empty")
    elif len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, merge_detected(text, entities)


def _parse(raw: str, parse_mode: str | None, explicit: Any) -> tuple[str, list[JSON]]:
    if parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise bad_request("unsupported parse_mode")
        try:
            return parser(raw)
        except (HtmlParseError, MarkdownParseError) as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    if explicit:
        return raw, _checked_entities(raw, explicit)
    return raw, []


def _checked_entities(text: str, entities: Any) -> list[JSON]:
    if not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    limit = utf16_len(text)
    kept: list[JSON] = []
    for item in entities:
        if not isinstance(item, dict) or not {"type", "offset", "length"} <= item.keys():
            raise bad_request("can't parse MessageEntity")
        end = min(int(item["offset"]) + int(item["length"]), limit)
        if end > int(item["offset"]) >= 0:
            kept.append({**item, "length": end - int(item["offset"])})
    return sort_entities(kept)


def content_with(text_key: str, text: str, entities: list[JSON]) -> JSON:
    """`{"text": ..., "entities": [...]}` (or caption), leaving out what is empty."""
    data: JSON = {}
    if text:
        data[text_key] = text
        if entities:
            data["entities" if text_key == "text" else "caption_entities"] = entities
    return data


def reply_markup(p: Params) -> JSON | None:
    """The validated `reply_markup` of a call."""
    markup = p.json("reply_markup", _MARKUP_ERROR)
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request(_MARKUP_ERROR)
    if "inline_keyboard" in markup:
        return {"inline_keyboard": _inline_rows(markup["inline_keyboard"])}
    if "keyboard" in markup:
        _check_reply_keyboard(markup["keyboard"])
        return markup
    if markup.get("force_reply") or markup.get("remove_keyboard"):
        return markup
    raise bad_request(_MARKUP_ERROR)


def _inline_rows(rows: Any) -> list[list[JSON]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: field \"inline_keyboard\" "
                          "must be an Array of Arrays")
    return [[_inline_button(button) for button in row] for row in rows]


def _inline_button(button: Any) -> JSON:
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be "
                          "an Object")
    if not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Field \"text\" must be of type "
                          "String")
    actions = [key for key in _BUTTON_ACTIONS if button.get(key) is not None]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in "
                          "the inline keyboard")
    if "callback_data" in actions:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in actions:
        _check_url(str(button["url"]))
    return {key: value for key, value in button.items() if value is not None}


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    valid = parts.scheme in ("http", "https", "tg", "ton") and (parts.netloc or parts.path)
    if not valid:
        raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse keyboard button: field \"keyboard\" must be an Array "
                          "of Arrays")
    for row in rows:
        for button in row:
            if isinstance(button, str):
                continue
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse keyboard button: Field \"text\" must be of "
                                  "type String")


def reply_fields(world: World, state: ChatState, p: Params) -> JSON:
    """`reply_to_message` (same chat) or `external_reply` (another chat), plus `quote`."""
    params = p.json("reply_parameters", "can't parse reply parameters JSON object")
    allow = p.boolean("allow_sending_without_reply")
    source_ref: Any = None
    quote: Any = None
    if isinstance(params, dict):
        message_id = params.get("message_id")
        allow = allow or bool(params.get("allow_sending_without_reply"))
        source_ref, quote = params.get("chat_id"), params.get("quote")
    else:
        message_id = p.integer("reply_to_message_id")
    if message_id is None:
        return {}
    source = state if source_ref in (None, state.id) else world.lookup_chat(source_ref)
    stored = source.live_message(int(message_id))
    if stored is None:
        if allow:
            return {}
        raise bad_request("message to be replied not found")
    if source is state:
        fields: JSON = {"reply_to_message": quoted(stored.data)}
    else:
        fields = {"external_reply": external_reply(source, stored.data)}
    if quote:
        fields["quote"] = _quote(stored.data, str(quote))
    return fields


def _quote(data: JSON, quote: str) -> JSON:
    text = data.get("text") or data.get("caption") or ""
    index = text.find(quote)
    if index < 0:
        raise bad_request("QUOTE_TEXT_INVALID")
    return {"text": quote, "position": utf16_len(text[:index]), "is_manual": True}
