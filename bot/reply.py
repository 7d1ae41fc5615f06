"""What the engine answers: front-end-neutral text spans, buttons and attachments.

A :class:`Reply` is built by :mod:`bot.engine` and rendered by a front end: the
Telegram handlers turn it into escaped HTML with an inline keyboard, the terminal
chat into plain text with numbered choices. Keeping the content structured (not
pre-rendered HTML) means escaping happens in exactly one place per front end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.actions import Action


class Style(StrEnum):
    """How a span of text is shown."""

    PLAIN = "plain"
    BOLD = "bold"
    ITALIC = "italic"
    LINK = "link"


@dataclass(frozen=True)
class Span:
    """A run of text in one style; a LINK span also has a URL."""

    text: str
    style: Style = Style.PLAIN
    url: str | None = None


@dataclass(frozen=True)
class Button:
    """An inline button: a label and the action it triggers."""

    label: str
    action: Action


@dataclass(frozen=True)
class Attachment:
    """A file sent with the reply (e.g. the user's data export)."""

    filename: str
    content: bytes
    caption: str = ""
    #: Shown as a picture (a PNG chart) rather than as a file.
    photo: bool = False


@dataclass(frozen=True)
class Delivery:
    """A message for another chat, sent with a reply (a ticket to staff, an answer to a user)."""

    chat_id: int
    reply: Reply
    #: Said to the chat that caused it when this cannot be delivered (e.g. blocked bot).
    undelivered: str = ""


@dataclass(frozen=True)
class Reply:
    """One answer of the engine to one user input."""

    spans: tuple[Span, ...] = ()
    buttons: tuple[tuple[Button, ...], ...] = ()
    kind: str = "info"
    topic_id: str | None = None
    attachment: Attachment | None = None
    #: A short toast for a button press (Telegram's callback answer).
    notice: str | None = None
    #: Replace the message the pressed button was on, instead of sending a new one.
    edit: bool = False
    #: Ask the client to answer this message with a reply (Telegram's ForceReply): in a
    #: group, the bot only receives replies to its own messages.
    force_reply: bool = False
    #: Messages for other chats, sent after this one.
    deliveries: tuple[Delivery, ...] = ()

    @property
    def plain_text(self) -> str:
        """Return the reply's text without styling (links keep their text only)."""
        return "".join(span.text for span in self.spans)

    @property
    def all_buttons(self) -> list[Button]:
        """Return every button, row by row."""
        return [button for row in self.buttons for button in row]


def text(*parts: str | Span) -> tuple[Span, ...]:
    """Build spans from plain strings and ready spans."""
    return tuple(Span(p) if isinstance(p, str) else p for p in parts)


def bold(value: str) -> Span:
    """Return a bold span."""
    return Span(value, Style.BOLD)


def italic(value: str) -> Span:
    """Return an italic span."""
    return Span(value, Style.ITALIC)


def link(value: str, url: str) -> Span:
    """Return a link span."""
    return Span(value, Style.LINK, url)
