"""`parse_mode=HTML` the way Telegram (tdlib) parses it: plain text plus `MessageEntity` list.

Follows tdlib's `parse_html`: only the documented tags, `&lt; &gt; &amp; &quot;` and numeric
character references, attributes quoted or bare, and errors quoting the UTF-8 byte offset
("Unsupported start tag "" at byte offset 2" for an unescaped `<`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from .models import JSON
from .text import entity, sort_entities, utf16_len

_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HtmlParseError(ValueError):
    """The text cannot be parsed; the message is tdlib's wording."""


@dataclass
class _Open:
    tag: str
    byte_offset: int
    start: int
    text_start: int
    attrs: dict[str, str] = field(default_factory=dict)


class _HtmlParser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.out: list[str] = []
        self.pos = 0
        self.chars = 0
        self.stack: list[_Open] = []
        self.entities: list[JSON] = []

    def byte_offset(self, index: int) -> int:
        return len(self.src[:index].encode("utf-8"))

    def char(self, index: int) -> str:
        return self.src[index] if index < len(self.src) else ""

    def emit(self, piece: str) -> None:
        self.out.append(piece)
        self.pos += utf16_len(piece)
        self.chars += len(piece)

    def run(self) -> tuple[str, list[JSON]]:
        while self.i < len(self.src):
            ch = self.src[self.i]
            if ch == "&":
                self.emit(self.read_reference())
            elif ch == "<" and self.char(self.i + 1) == "/":
                self.end_tag()
            elif ch == "<":
                self.start_tag()
            else:
                self.emit(ch)
                self.i += 1
        if self.stack:
            tag = self.stack[-1].tag
            raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self.out), sort_entities(self.entities)

    def read_reference(self) -> str:
        end = self.src.find(";", self.i + 1, self.i + 12)
        if end == -1:
            self.i += 1
            return "&"
        name = self.src[self.i + 1 : end]
        if name in _NAMED:
            value = _NAMED[name]
        elif name.startswith("#") and len(name) > 1:
            decoded = html.unescape(f"&{name};")
            if decoded == f"&{name};":
                self.i += 1
                return "&"
            value = decoded
        else:
            self.i += 1
            return "&"
        self.i = end + 1
        return value

    def start_tag(self) -> None:
        begin = self.i
        self.i += 1
        end = self.i
        while end < len(self.src) and not self.src[end].isspace() and self.src[end] != ">":
            end += 1
        if end >= len(self.src):
            raise HtmlParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        tag = self.src[self.i : end].lower()
        if tag not in _SIMPLE:
            raise HtmlParseError(
                f'Unsupported start tag "{tag}" at byte offset {self.byte_offset(begin)}'
            )
        self.i = end
        attrs = self.read_attributes(tag, begin)
        opened = _Open(tag, self.byte_offset(begin), self.pos, self.chars, attrs)
        if tag == "span" and opened.attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {opened.byte_offset}'
            )
        self.stack.append(opened)
        self.i += 1

    def skip_spaces(self) -> None:
        while self.i < len(self.src) and self.src[self.i].isspace():
            self.i += 1

    def read_attributes(self, tag: str, begin: int) -> dict[str, str]:
        attrs: dict[str, str] = {}
        while True:
            self.skip_spaces()
            if self.i >= len(self.src):
                raise HtmlParseError(
                    f"Unclosed start tag at byte offset {self.byte_offset(begin)}"
                )
            if self.src[self.i] == ">":
                return attrs
            name_start = self.i
            while self.i < len(self.src) and self.src[self.i] not in " \t\r\n=>":
                self.i += 1
            name = self.src[name_start : self.i].lower()
            if not name:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{self.byte_offset(begin)}"
                )
            self.skip_spaces()
            if self.char(self.i) != "=":
                if tag == "blockquote" and name == "expandable":
                    attrs[name] = ""
                    continue
                raise HtmlParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {self.byte_offset(begin)}"
                )
            self.i += 1
            self.skip_spaces()
            attrs[name] = self.read_value(begin)

    def read_value(self, begin: int) -> str:
        if self.i >= len(self.src):
            raise HtmlParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        quote = self.src[self.i]
        if quote not in "'\"":
            start = self.i
            while self.char(self.i) and (self.char(self.i).isalnum() or self.char(self.i) in ".-"):
                self.i += 1
            if self.char(self.i) not in (">", "") and not self.char(self.i).isspace():
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset {self.byte_offset(start)}"
                )
            return self.src[start : self.i].lower()
        self.i += 1
        parts: list[str] = []
        while self.i < len(self.src) and self.src[self.i] != quote:
            if self.src[self.i] == "&":
                parts.append(self.read_reference())
            else:
                parts.append(self.src[self.i])
                self.i += 1
        self.i += 1
        return "".join(parts)

    def end_tag(self) -> None:
        begin = self.i
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        self.i += 2
        name_start = self.i
        while self.i < len(self.src) and not self.src[self.i].isspace() and self.src[self.i] != ">":
            self.i += 1
        name = self.src[name_start : self.i].lower()
        self.skip_spaces()
        if self.char(self.i) != ">":
            raise HtmlParseError(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        self.i += 1
        opened = self.stack[-1]
        if name and name != opened.tag:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{opened.tag}>", found "</{name}>"'
            )
        self.stack.pop()
        if self.pos > opened.start:
            self.close(opened)

    def close(self, opened: _Open) -> None:
        length = self.pos - opened.start
        kind = _SIMPLE[opened.tag]
        if kind == "text_link":
            self.close_link(opened, length)
        elif kind == "pre":
            self.close_pre(opened, length)
        elif kind == "code":
            language = opened.attrs.get("class", "")
            made = entity("code", opened.start, length)
            if language.startswith("language-"):
                made["_language"] = language.removeprefix("language-")
            self.entities.append(made)
        elif kind == "blockquote" and "expandable" in opened.attrs:
            self.entities.append(entity("expandable_blockquote", opened.start, length))
        elif kind == "custom_emoji":
            emoji_id = opened.attrs.get("emoji-id")
            self.entities.append(entity(kind, opened.start, length, custom_emoji_id=emoji_id))
        else:
            self.entities.append(entity(kind, opened.start, length))

    def close_link(self, opened: _Open, length: int) -> None:
        url = opened.attrs.get("href", "").strip()
        if not url:
            url = "".join(self.out)[opened.text_start :]
        if "://" not in url and "." not in url:
            return
        self.entities.append(entity("text_link", opened.start, length, url=url))

    def close_pre(self, opened: _Open, length: int) -> None:
        language = None
        for item in self.entities:
            same = item["offset"] == opened.start and item["length"] == length
            if same and item["type"] == "code":
                language = item.pop("_language", None)
                self.entities.remove(item)
                break
        self.entities.append(entity("pre", opened.start, length, language=language))


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Plain text and entities of an HTML-formatted message; raises `HtmlParseError`."""
    text, entities = _HtmlParser(source).run()
    for item in entities:
        item.pop("_language", None)
    return text, entities
