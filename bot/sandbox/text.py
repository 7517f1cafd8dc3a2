"""Text helpers: UTF-16 offsets, entities Telegram detects by itself, whitespace trimming.

Telegram counts message length in Unicode code points (4096 for text, 1024 for captions) but
entity offsets and lengths in UTF-16 code units, so an emoji shifts later offsets by two.
"""

from __future__ import annotations

import re

from .models import JSON

MAX_TEXT = 4096
MAX_CAPTION = 1024

_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?!\w)")
_HASHTAG = re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")
_URL = re.compile(r"(?<![\w@/])(?:https?://)?(?:[a-z0-9-]+\.)+[a-z]{2,24}(?:/[^\s]*)?", re.I)
_EMAIL = re.compile(r"(?<![\w.])[\w.+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,24}(?!\w)", re.I)
_URL_TAIL = ".,;:!?)]}'\""
_KNOWN_TLDS = frozenset(
    {"com", "net", "org", "vn", "info", "io", "me", "gov", "edu", "app", "dev", "xyz", "site"}
    | {"online", "ru", "de", "uk", "us", "co", "ly", "gl", "be", "ai", "tv", "link", "top"}
)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def entity(kind: str, offset: int, length: int, **extra: object) -> JSON:
    """A `MessageEntity` dict."""
    data: JSON = {"offset": offset, "length": length, "type": kind}
    data.update({key: value for key, value in extra.items() if value is not None})
    return data


def sort_entities(entities: list[JSON]) -> list[JSON]:
    """Order entities as Telegram does: by offset, longer (outer) first."""
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _span_entity(text: str, kind: str, start: int, end: int) -> JSON:
    return entity(kind, utf16_len(text[:start]), utf16_len(text[start:end]))


def _url_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in _URL.finditer(text):
        value = match.group(0).rstrip(_URL_TAIL)
        host = re.sub(r"^https?://", "", value, flags=re.I).split("/", 1)[0]
        has_scheme = value.lower().startswith(("http://", "https://"))
        if has_scheme or host.rsplit(".", 1)[-1].lower() in _KNOWN_TLDS:
            spans.append((match.start(), match.start() + len(value)))
    return spans


def detect_entities(text: str) -> list[JSON]:
    """Entities Telegram adds on its own: bot commands, mentions, hashtags, e-mails, URLs."""
    found: list[tuple[str, int, int]] = []
    for kind, pattern in (
        ("bot_command", _COMMAND),
        ("email", _EMAIL),
        ("mention", _MENTION),
        ("hashtag", _HASHTAG),
    ):
        found.extend((kind, m.start(), m.end()) for m in pattern.finditer(text))
    taken = [(start, end) for _, start, end in found]
    for start, end in _url_spans(text):
        if not any(start < t_end and t_start < end for t_start, t_end in taken):
            found.append(("url", start, end))
    return sort_entities([_span_entity(text, kind, start, end) for kind, start, end in found])


def merge_detected(text: str, explicit: list[JSON]) -> list[JSON]:
    """Explicit entities plus detected ones that do not overlap any explicit entity."""
    merged = list(explicit)
    for found in detect_entities(text):
        start, end = found["offset"], found["offset"] + found["length"]
        if not any(
            start < e["offset"] + e["length"] and e["offset"] < end for e in explicit
        ):
            merged.append(found)
    return sort_entities(merged)


def trim(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Strip leading/trailing whitespace as Telegram does, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    limit = utf16_len(stripped)
    kept: list[JSON] = []
    for item in entities:
        start = max(item["offset"] - shift, 0)
        end = min(item["offset"] + item["length"] - shift, limit)
        if end > start:
            kept.append({**item, "offset": start, "length": end - start})
    return stripped, kept


def command_of(text: str) -> tuple[str, str | None] | None:
    """The command a message starts with and the bot it is addressed to, if any."""
    match = _COMMAND.match(text)
    if match is None:
        return None
    name, _, target = match.group(0)[1:].partition("@")
    return name, target or None
