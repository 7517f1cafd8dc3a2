"""`parse_mode=MarkdownV2` and legacy `Markdown`, following tdlib's parsers.

MarkdownV2 is strict: every one of ``_*[]()~`>#+-=|{}.!`` outside an entity must be escaped
with a backslash, or Telegram refuses the message ("Character '.' is reserved and must be
escaped with the preceding '\\'") — a common production bug worth catching in tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import JSON
from .text import entity, sort_entities, utf16_len

RESERVED = set("_*[]()~`>#+-=|{}.!")
_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


class MarkdownParseError(ValueError):
    """The text cannot be parsed; the message is tdlib's wording."""


@dataclass
class _Open:
    kind: str
    start: int
    byte_offset: int
    text_start: int
    language: str | None = None


class _MarkdownV2:
    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.out: list[str] = []
        self.pos = 0
        self.chars = 0
        self.stack: list[_Open] = []
        self.entities: list[JSON] = []
        self.quote_start: int | None = None

    def at(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.src[index] if index < len(self.src) else ""

    def byte_offset(self, index: int | None = None) -> int:
        return len(self.src[: self.i if index is None else index].encode("utf-8"))

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.pos += utf16_len(piece)
        self.chars += len(piece)

    def run(self) -> tuple[str, list[JSON]]:
        while self.i < len(self.src):
            self.step()
        if self.stack:
            top = self.stack[-1]
            raise MarkdownParseError(
                f"Can't find end of {_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
            )
        self.close_quote()
        return "".join(self.out), sort_entities(self.entities)

    def step(self) -> None:
        ch = self.at()
        code_like = bool(self.stack) and self.stack[-1].kind in ("code", "pre")
        if ch == "\\" and 0 < ord(self.at(1) or "\0") <= 126:
            self.emit(self.at(1))
            self.i += 2
            return
        if not code_like and self.line_start():
            self.handle_line_start()
            if self.i >= len(self.src):
                return
            ch = self.at()
        if code_like:
            self.step_code()
        elif self.is_end(ch):
            self.close_top()
        elif ch in RESERVED:
            self.open_entity(ch)
        else:
            self.emit(ch)
            self.i += 1

    def line_start(self) -> bool:
        return self.i == 0 or self.src[self.i - 1] == "\n"

    def handle_line_start(self) -> None:
        if self.at() == ">":
            if self.quote_start is None:
                self.quote_start = self.pos
            self.i += 1
        elif self.quote_start is not None:
            self.close_quote(strip_newline=True)

    def close_quote(self, strip_newline: bool = False) -> None:
        if self.quote_start is None:
            return
        end = self.pos - (1 if strip_newline and self.out and self.out[-1] == "\n" else 0)
        if end > self.quote_start:
            self.entities.append(entity("blockquote", self.quote_start, end - self.quote_start))
        self.quote_start = None

    def step_code(self) -> None:
        if self.is_end(self.at()):
            self.close_top()
        else:
            self.emit(self.at())
            self.i += 1

    def is_end(self, ch: str) -> bool:
        if not self.stack:
            return False
        kind = self.stack[-1].kind
        ends = {
            "bold": ch == "*",
            "italic": ch == "_" and self.at(1) != "_",
            "underline": ch == "_" and self.at(1) == "_",
            "strikethrough": ch == "~",
            "spoiler": ch == "|" and self.at(1) == "|",
            "code": ch == "`",
            "pre": ch == "`" and self.at(1) == "`" and self.at(2) == "`",
            "text_link": ch == "]",
            "custom_emoji": ch == "]",
        }
        return ends[kind]

    def open_entity(self, ch: str) -> None:
        begin = self.byte_offset()
        kind, width = self.entity_start(ch)
        self.i += width
        opened = _Open(kind, self.pos, begin, self.chars)
        if kind == "pre":
            opened.language = self.read_language()
        self.stack.append(opened)

    def entity_start(self, ch: str) -> tuple[str, int]:
        two = self.at(1)
        if ch == "_":
            return ("underline", 2) if two == "_" else ("italic", 1)
        if ch == "`":
            return ("pre", 3) if two == "`" and self.at(2) == "`" else ("code", 1)
        if ch == "|" and two == "|":
            return "spoiler", 2
        if ch == "!" and two == "[":
            return "custom_emoji", 2
        simple = {"*": "bold", "~": "strikethrough", "[": "text_link"}
        if ch in simple:
            return simple[ch], 1
        raise MarkdownParseError(
            f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
        )

    def read_language(self) -> str | None:
        end = self.src.find("\n", self.i)
        if end == -1:
            return None
        language = self.src[self.i : end].strip()
        if language and all(c.isalnum() or c in "+-_#." for c in language):
            self.i = end + 1
            return language
        return None

    def close_top(self) -> None:
        opened = self.stack.pop()
        widths = {"underline": 2, "spoiler": 2, "pre": 3}
        self.i += widths.get(opened.kind, 1)
        length = self.pos - opened.start
        if opened.kind in ("text_link", "custom_emoji"):
            self.close_link(opened, length)
        elif length > 0:
            extra = {"language": opened.language} if opened.kind == "pre" else {}
            self.entities.append(entity(opened.kind, opened.start, length, **extra))

    def close_link(self, opened: _Open, length: int) -> None:
        url = "".join(self.out)[opened.text_start :]
        if self.at() == "(":
            url = self.read_url()
        if length <= 0:
            return
        if opened.kind == "custom_emoji":
            emoji_id = url.partition("id=")[2]
            self.entities.append(entity("custom_emoji", opened.start, length,
                                        custom_emoji_id=emoji_id))
        elif "://" in url or "." in url:
            self.entities.append(entity("text_link", opened.start, length, url=url))

    def read_url(self) -> str:
        begin = self.i
        self.i += 1
        parts: list[str] = []
        while self.i < len(self.src) and self.at() != ")":
            if self.at() == "\\" and self.at(1):
                parts.append(self.at(1))
                self.i += 2
            else:
                parts.append(self.at())
                self.i += 1
        if self.i >= len(self.src):
            raise MarkdownParseError(
                f"Can't find end of a URL at byte offset {self.byte_offset(begin)}"
            )
        self.i += 1
        return "".join(parts)


def parse_markdown_v2(source: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of a MarkdownV2 message; raises `MarkdownParseError`."""
    return _MarkdownV2(source).run()


_LEGACY = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}


def parse_markdown(source: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of a legacy Markdown message (no nesting)."""
    out: list[str] = []
    entities: list[JSON] = []
    pos, i = 0, 0
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source) and source[i + 1] in "_*`[":
            out.append(source[i + 1])
            pos += 1
            i += 2
            continue
        if ch not in _LEGACY:
            out.append(ch)
            pos += utf16_len(ch)
            i += 1
            continue
        i, pos = _legacy_entity(source, i, out, entities, pos)
    return "".join(out), sort_entities(entities)


def _legacy_entity(
    source: str, i: int, out: list[str], entities: list[JSON], pos: int
) -> tuple[int, int]:
    ch = source[i]
    begin = len(source[:i].encode("utf-8"))
    kind, opener = _LEGACY[ch], ch
    if source.startswith("```", i):
        kind, opener = "pre", "```"
    closer = {"[": "]"}.get(opener, opener)
    end = source.find(closer, i + len(opener))
    if end == -1:
        raise MarkdownParseError(f"Can't find end of the entity starting at byte offset {begin}")
    inner = source[i + len(opener) : end]
    after = end + len(closer)
    extra: dict[str, object] = {}
    if kind == "text_link":
        if source[after : after + 1] != "(" or source.find(")", after) == -1:
            raise MarkdownParseError(
                f"Can't find end of the entity starting at byte offset {begin}"
            )
        close = source.find(")", after)
        extra["url"] = source[after + 1 : close]
        after = close + 1
    if inner:
        entities.append(entity(kind, pos, utf16_len(inner), **extra))
    out.append(inner)
    return after, pos + utf16_len(inner)
