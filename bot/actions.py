"""Button actions and their one encoder/decoder for Telegram's 64-byte callback data.

Every inline button carries one of the frozen action objects below. :func:`encode`
turns it into a short string (always within :data:`MAX_BYTES`); :func:`decode`
turns any string back into an action, or ``None`` when the data is stale, foreign
or forged, so a handler never has to trust what a client sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BYTES = 64
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_SLUG = re.compile(r"^[a-z0-9-]{1,40}$")
_ROW_ID = re.compile(r"^[0-9]{1,18}$")  # fits SQLite's 64-bit integer; longer is forged
_SMALL = re.compile(r"^[0-9]{1,3}$")  # a page or a status index
_STATUSES = ("not_started", "in_progress", "done", "not_applicable", "blocked")
MENUS = ("ask", "topics", "pathway", "progress", "help", "about", "start", "reminders", "dates")
REMINDER_KINDS = ("deadlines", "milestones")


@dataclass(frozen=True)
class OpenTopic:
    """Show one topic's answer."""

    topic_id: str


@dataclass(frozen=True)
class Browse:
    """Show the categories (``category`` empty) or one category's topics, at a page."""

    category: str = ""
    page: int = 0


@dataclass(frozen=True)
class Feedback:
    """Helpful / Not helpful on an answer."""

    topic_id: str
    helpful: bool


@dataclass(frozen=True)
class NoneOfThese:
    """None of the suggestions fit the logged question ``question_id``."""

    question_id: int


@dataclass(frozen=True)
class Menu:
    """A main-menu entry."""

    name: str


@dataclass(frozen=True)
class PathChoose:
    """Answer a pathway step with one of its choices."""

    step_id: str
    choice_id: str


@dataclass(frozen=True)
class PathNav:
    """Pathway navigation on a step: back, skip, explain, stop, or go (open it)."""

    verb: str
    step_id: str


@dataclass(frozen=True)
class SetStatus:
    """Set one step's status directly from the progress view."""

    step_id: str
    status: str


@dataclass(frozen=True)
class Confirm:
    """Confirm or cancel a destructive command (reset, forget)."""

    what: str
    yes: bool


@dataclass(frozen=True)
class Remind:
    """Turn one kind of reminder on or off."""

    kind: str
    on: bool


@dataclass(frozen=True)
class Handoff:
    """Pass the logged question ``question_id`` to the team as a ticket."""

    question_id: int


@dataclass(frozen=True)
class Ticket:
    """A staff action on a ticket: answer, close, or draft a topic from its answer."""

    verb: str
    ticket_id: int


@dataclass(frozen=True)
class AddPhrasing:
    """Staff: add the logged question as a phrasing of a topic."""

    question_id: int
    topic_id: str


@dataclass(frozen=True)
class Ignore:
    """Staff: take the group of unanswered questions holding this one off the list."""

    question_id: int


Action = (
    OpenTopic
    | Browse
    | Feedback
    | NoneOfThese
    | Menu
    | PathChoose
    | PathNav
    | SetStatus
    | Confirm
    | Remind
    | Handoff
    | Ticket
    | AddPhrasing
    | Ignore
)
TICKET_VERBS = ("answer", "close", "draft")
PATH_VERBS = ("back", "skip", "explain", "stop", "go", "edit")
CONFIRMABLE = ("reset", "forget")


def encode(action: Action) -> str:
    """Encode an action as callback data; raise ValueError if it cannot fit."""
    match action:
        case OpenTopic(topic_id):
            data = f"t:{topic_id}"
        case Browse(category, page):
            data = f"b:{category}:{page}"
        case Feedback(topic_id, helpful):
            data = f"f:{int(helpful)}:{topic_id}"
        case NoneOfThese(question_id):
            data = f"n:{question_id}"
        case Menu(name):
            data = f"m:{name}"
        case PathChoose(step_id, choice_id):
            data = f"p:{step_id}:{choice_id}"
        case PathNav(verb, step_id):
            data = f"q:{verb}:{step_id}"
        case SetStatus(step_id, status):
            data = f"s:{_STATUSES.index(status)}:{step_id}"
        case Confirm(what, yes):
            data = f"c:{what}:{int(yes)}"
        case Remind(kind, on):
            data = f"r:{REMINDER_KINDS.index(kind)}:{int(on)}"
        case Handoff(question_id):
            data = f"h:{question_id}"
        case Ticket(verb, ticket_id):
            data = f"k:{verb[0]}:{ticket_id}"
        case AddPhrasing(question_id, topic_id):
            data = f"x:{question_id}:{topic_id}"
        case Ignore(question_id):
            data = f"i:{question_id}"
    if len(data.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"callback data too long ({len(data)} bytes): {data!r}")
    return data


def decode(data: str | None) -> Action | None:
    """Decode callback data; return None for anything malformed, stale or forged."""
    if not data or len(data.encode("utf-8")) > MAX_BYTES:
        return None
    kind, _, rest = data.partition(":")
    parts = rest.split(":")
    try:
        if kind == "t" and len(parts) == 1 and _ID.match(parts[0]):
            return OpenTopic(parts[0])
        if (
            kind == "b"
            and len(parts) == 2
            and (parts[0] == "" or _SLUG.match(parts[0]))
            and _SMALL.match(parts[1])
        ):
            return Browse(parts[0], int(parts[1]))
        if kind == "f" and len(parts) == 2 and parts[0] in ("0", "1") and _ID.match(parts[1]):
            return Feedback(parts[1], parts[0] == "1")
        if kind == "n" and len(parts) == 1 and _ROW_ID.match(parts[0]):
            return NoneOfThese(int(parts[0]))
        if kind == "m" and len(parts) == 1 and parts[0] in MENUS:
            return Menu(parts[0])
        if kind == "p" and len(parts) == 2 and all(_ID.match(p) for p in parts):
            return PathChoose(parts[0], parts[1])
        if kind == "q" and len(parts) == 2 and parts[0] in PATH_VERBS and _ID.match(parts[1]):
            return PathNav(parts[0], parts[1])
        if kind == "s" and len(parts) == 2 and _SMALL.match(parts[0]) and _ID.match(parts[1]):
            index = int(parts[0])
            return SetStatus(parts[1], _STATUSES[index]) if index < len(_STATUSES) else None
        if kind == "c" and len(parts) == 2 and parts[0] in CONFIRMABLE and parts[1] in ("0", "1"):
            return Confirm(parts[0], parts[1] == "1")
        if kind == "r" and len(parts) == 2 and parts[0] in ("0", "1") and parts[1] in ("0", "1"):
            return Remind(REMINDER_KINDS[int(parts[0])], parts[1] == "1")
        if kind == "h" and len(parts) == 1 and _ROW_ID.match(parts[0]):
            return Handoff(int(parts[0]))
        verbs = {v[0]: v for v in TICKET_VERBS}
        if kind == "k" and len(parts) == 2 and parts[0] in verbs and _ROW_ID.match(parts[1]):
            return Ticket(verbs[parts[0]], int(parts[1]))
        if kind == "x" and len(parts) == 2 and _ROW_ID.match(parts[0]) and _ID.match(parts[1]):
            return AddPhrasing(int(parts[0]), parts[1])
        if kind == "i" and len(parts) == 1 and _ROW_ID.match(parts[0]):
            return Ignore(int(parts[0]))
    except ValueError:
        return None
    return None


def slug(text: str) -> str:
    """Make a short, stable, callback-safe slug of a category name."""
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:40] or "general"
