"""Render engine replies as Telegram HTML and inline keyboards.

Escaping happens here and only here: every piece of text goes through
:func:`html.escape`, so nothing staff or users write can break the markup.
Telegram limits a message to 4,096 characters (counted in UTF-16 code units
after entities are parsed); long replies are split at paragraph, line or word
boundaries, never inside a tag.

Both renderers are pure and their inputs immutable, so their results are cached: the
same few hundred answers are rendered again and again.
"""

from __future__ import annotations

import functools
import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.actions import encode
from bot.reply import Button, Span, Style

#: Telegram's limit is 4,096; a little room is kept for safety.
MESSAGE_LIMIT = 4000


def _units(value: str) -> int:
    """Count UTF-16 code units, the way Telegram measures message length."""
    return len(value.encode("utf-16-le")) // 2


def _wrap(span: Span, piece: str) -> str:
    """Render a piece of a span's text with the span's markup."""
    escaped = html.escape(piece, quote=False)
    if span.style is Style.BOLD:
        return f"<b>{escaped}</b>"
    if span.style is Style.ITALIC:
        return f"<i>{escaped}</i>"
    if span.style is Style.LINK and span.url:
        return f'<a href="{html.escape(span.url, quote=True)}">{escaped}</a>'
    return escaped


def _pieces(text: str, limit: int) -> list[str]:
    """Split text into pieces of at most ``limit`` units, at line ends or else spaces."""
    lines = text.splitlines(keepends=True)
    pieces: list[str] = []
    for line in lines:
        while _units(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            while _units(line[:cut]) > limit:  # astral characters count twice
                cut -= 1
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
    return pieces


@functools.lru_cache(maxsize=1024)
def render_html(spans: tuple[Span, ...], limit: int = MESSAGE_LIMIT) -> tuple[str, ...]:
    """Render spans to one or more HTML messages, each within Telegram's limit."""
    chunks: list[str] = []
    current: list[str] = []
    visible = 0
    for span in spans:
        # A link is never split.
        parts = [span.text] if span.style is Style.LINK else _pieces(span.text, limit)
        for part in parts:
            size = _units(part)
            if current and visible + size > limit:
                chunks.append("".join(current))
                current, visible = [], 0
            if part:
                current.append(_wrap(span, part))
                visible += size
    if current:
        chunks.append("".join(current))
    return tuple(c.strip() for c in chunks if c.strip())


@functools.lru_cache(maxsize=1024)
def render_keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """Turn button rows into an inline keyboard; every callback goes through one encoder."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label[:64], callback_data=encode(b.action)) for b in row]
            for row in rows
            if row
        ]
    )
