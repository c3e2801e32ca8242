"""Text formatting as Telegram does it: HTML parse mode to plain text plus entities."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from .state import utf16_len

_TAG_ENTITIES = {
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
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}


class FormattingError(ValueError):
    """Text that Telegram would reject with "can't parse entities"."""


class _TelegramHtml(HTMLParser):
    """Collects plain text and entities; raises on tags Telegram does not support."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.parts: list[str] = []
        self.text_pos = 0
        self.stack: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []

    def _byte_offset(self) -> int:
        line, column = self.getpos()
        return len(self.source[: self.line_starts[line - 1] + column].encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag not in _TAG_ENTITIES or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise FormattingError(
                f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}'
            )
        self.stack.append({"tag": tag, "offset": self.text_pos, "attrs": attributes})

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise FormattingError(
            f'Unsupported start tag "{tag}" at byte offset {self._byte_offset()}'
        )

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1]["tag"] != tag:
            expected = f'"</{self.stack[-1]["tag"]}>"' if self.stack else "no end tag"
            raise FormattingError(
                f"Unmatched end tag at byte offset {self._byte_offset()}, "
                f'expected {expected}, found "</{tag}>"'
            )
        opened = self.stack.pop()
        attrs = opened["attrs"]
        language = (attrs.get("class") or "").removeprefix("language-")
        if tag == "code" and language and self.stack and self.stack[-1]["tag"] == "pre":
            self.stack[-1]["language"] = language
            return
        length = self.text_pos - opened["offset"]
        if length == 0:
            return
        kind = _TAG_ENTITIES[tag]
        if tag == "blockquote" and "expandable" in attrs:
            kind = "expandable_blockquote"
        entity: dict[str, Any] = {"type": kind, "offset": opened["offset"], "length": length}
        if kind == "text_link":
            entity["url"] = attrs.get("href") or ""
        elif kind == "pre" and opened.get("language"):
            entity["language"] = opened["language"]
        elif kind == "date_time":
            entity["unix_time"] = int(attrs.get("unix") or 0)
            if attrs.get("format"):
                entity["date_time_format"] = attrs["format"]
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = attrs.get("emoji-id") or ""
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.text_pos += utf16_len(data)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of an HTML-formatted message; FormattingError when invalid."""
    parser = _TelegramHtml(text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise FormattingError(
            f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]["tag"]}"'
        )
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


def render(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]] | None]:
    """What the user sees: ``(plain text, entities)``.

    HTML is parsed like Telegram does; Markdown modes are passed through unparsed.
    """
    if parse_mode and parse_mode.lower() == "html":
        plain, parsed = parse_html(text)
        return plain, parsed or None
    return text, entities or None


def command_entities(text: str) -> list[dict[str, Any]]:
    """The ``bot_command`` entity Telegram adds to a message starting with a command."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?", text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
