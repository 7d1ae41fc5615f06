"""Pure rendering of knowledge content into replies, shared by the engine and the guide."""

from __future__ import annotations

import datetime as dt

from bot import actions as act
from bot.bundle import Bundle
from bot.calendar import Event
from bot.knowledge import PATHWAY_FOLLOW_UP, Topic
from bot.reply import Button, Reply, Span, bold, italic, link

MAX_FOLLOW_UPS = 3
#: Said once, by the view, under every answer flagged ``legal_note: true``.
LEGAL_NOTE = (
    "General information, not legal advice: check the official pages below, your "
    "program's GME office or an immigration attorney."
)


def source_link(event: Event) -> Span:
    """A link to the page an event's date was read on, labelled with its site."""
    return link(event.site, event.source)


def format_date(value: dt.date | None) -> str:
    """Format a date the way people read it, one way throughout: 3 June 2026."""
    return f"{value.day} {value:%B %Y}" if value else "unknown"


def bullets(answer: str) -> str:
    """Show staff's '- ' list items as bullets."""
    return "\n".join(
        "• " + line[2:] if line.startswith("- ") else line for line in answer.splitlines()
    )


def topic_reply(
    bundle: Bundle,
    topic: Topic,
    *,
    intro: str = "",
    today: dt.date | None = None,
    personal: str = "",
) -> Reply:
    """Render one topic: title, answer, sources with review date, related topics, feedback.

    Event placeholders in the answer are rendered as of ``today``; ``personal`` is one
    line about the user's own recorded step, shown under the answer.
    """
    kb = bundle.kb
    day = today or dt.datetime.now(dt.UTC).date()
    answer = bundle.calendar.render(topic.answer, day)
    spans: list[Span] = []
    if intro:
        spans.append(Span(intro + "\n\n"))
    spans += [bold(topic.title), Span("\n\n" + bullets(answer) + "\n\n")]
    if personal:
        spans += [italic(personal), Span("\n\n")]
    if topic.legal_note:
        spans += [italic(LEGAL_NOTE), Span("\n\n")]
    if topic.sources:
        label = "Official source: " if len(topic.sources) == 1 else "Official sources: "
        spans.append(italic(label))
        for index, source in enumerate(topic.sources):
            if index:
                spans.append(Span(" · "))
            spans.append(link(source.title, source.url))
        spans.append(Span("\n"))
    spans.append(
        italic(f"Last reviewed {format_date(topic.reviewed)}. Official pages win if they differ.")
    )
    rows: list[tuple[Button, ...]] = []
    for f in topic.follow_ups[:MAX_FOLLOW_UPS]:
        if f in kb.by_id:
            rows.append((Button(f"➡ {kb.by_id[f].title}", act.OpenTopic(f)),))
        elif f == PATHWAY_FOLLOW_UP:
            rows.append((Button("🧭 Follow the guided pathway", act.Menu("pathway")),))
    rows.append(
        (
            Button("👍 Helpful", act.Feedback(topic.id, True)),
            Button("👎 Not helpful", act.Feedback(topic.id, False)),
        )
    )
    kind = "decline" if topic.is_decline else "answer"
    return Reply(tuple(spans), tuple(rows), kind=kind, topic_id=topic.id)
