"""Statistics for staff: what users asked, what the bot did with it, and how far they got.

:func:`collect` reads the figures of a window of days from the store (each one a SQL
query, see the statistics section of :class:`bot.store.Store`) and returns one
JSON-ready dict, the contract of ``python -m bot stats --json``. :func:`text_report`
turns it into lines for a terminal or a Telegram message (user texts escaped with
:func:`bot.cli.printable`), and :func:`chart_png` into a PNG chart (matplotlib,
imported only when a chart is drawn). :func:`group_similar` groups near-duplicate
unanswered questions; it is pure, so other staff screens can reuse it.

Wired from the CLI (``stats``) and from :meth:`bot.staff.Staff.stats` (``/stats``, admins).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz, process

from bot.cli import printable
from bot.text import normalize

if TYPE_CHECKING:
    from bot.pathway import Pathway
    from bot.store import Store

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 3650
#: Unanswered questions grouped at most per report: the grouping is quadratic at worst.
MAX_UNANSWERED = 500
#: token_set_ratio at or above which two unanswered questions are one group.
SIMILAR = 70
TOP = 10

#: Outcomes of a message that are questions (smalltalk and my_step are messages only).
QUESTION_OUTCOMES = ("answer", "ambiguous", "decline", "fallback")
OTHER_OUTCOMES = ("smalltalk", "my_step")
#: The share keys of the report, by outcome.
SHARES = {
    "answer": "answered",
    "ambiguous": "offered_choice",
    "decline": "declined",
    "fallback": "fallback",
}


@dataclass(frozen=True)
class Group:
    """Near-duplicate questions: the newest one's text, how many, the newest time, row ids."""

    text: str
    count: int
    newest: str
    ids: tuple[int, ...]


def valid_days(value: int) -> bool:
    """Tell whether a window of ``value`` days can be reported."""
    return 1 <= value <= MAX_DAYS


def group_similar(rows: Sequence[Mapping[str, Any]], threshold: float = SIMILAR) -> list[Group]:
    """Group questions whose folded texts are alike; the newest group first.

    ``rows`` have ``id``, ``text`` and ``asked_at`` (ISO text). Greedy: from the newest
    question down, each joins the group whose first (newest) question it resembles most
    (rapidfuzz ``token_set_ratio`` on :func:`bot.text.normalize`d text, at least
    ``threshold``), or starts a new group. Texts that fold to nothing (emoji only) group
    only with the same text.
    """
    ordered = sorted(rows, key=lambda r: (str(r["asked_at"]), int(r["id"])), reverse=True)
    keys: list[str] = []  # each group's folded text, for matching
    members: list[list[Mapping[str, Any]]] = []
    for row in ordered:
        text = str(row["text"])
        key = normalize(text)
        found: int | None = None
        if key:
            best = process.extractOne(
                key, keys, scorer=fuzz.token_set_ratio, score_cutoff=threshold
            )
            found = best[2] if best is not None else None
        else:
            raw = " ".join(text.split())
            found = next(
                (i for i, group in enumerate(members)
                 if not keys[i] and " ".join(str(group[0]["text"]).split()) == raw),
                None,
            )
        if found is None:
            keys.append(key)
            members.append([row])
        else:
            members[found].append(row)
    return [
        Group(
            text=str(group[0]["text"]),
            count=len(group),
            newest=str(group[0]["asked_at"]),
            ids=tuple(int(r["id"]) for r in group),
        )
        for group in members
    ]


def window(days: int, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Return the window of ``days`` whole UTC days that ends at ``now`` (today counts)."""
    now = now.astimezone(dt.UTC)
    first = now.date() - dt.timedelta(days=days - 1)
    return dt.datetime.combine(first, dt.time(0), dt.UTC), now


def _share(part: int, whole: int) -> float | None:
    """Return ``part / whole`` rounded for reading, or None when there is nothing."""
    return round(part / whole, 4) if whole else None


def _iso_week(monday: str) -> str:
    """Name the ISO week a Monday starts, e.g. ``2025-W07``."""
    year, week, _ = dt.date.fromisoformat(monday).isocalendar()
    return f"{year}-W{week:02d}"


def _funnel_road(pathway: Pathway | None) -> list[tuple[str, str]]:
    """The main road of the pathway as (step id, title), in order."""
    if pathway is None:
        return []
    return [(step_id, pathway.steps[step_id].title) for step_id in pathway.route({})]


async def collect(
    store: Store, pathway: Pathway | None, days: int = DEFAULT_DAYS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Gather every figure of the last ``days`` days into one JSON-ready dict."""
    if not valid_days(days):
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    start, end = window(days, now or dt.datetime.now(dt.UTC))

    per_day: dict[str, dict[str, Any]] = {}
    day = start.date()
    while day <= end.date():
        per_day[day.isoformat()] = {"date": day.isoformat(), **dict.fromkeys(
            (*QUESTION_OUTCOMES, "other"), 0)}
        day += dt.timedelta(days=1)
    totals = dict.fromkeys(("messages", "questions", *QUESTION_OUTCOMES, *OTHER_OUTCOMES), 0)
    for row in await store.outcomes_per_day(start, end):
        outcome, n = str(row["outcome"]), int(row["n"])
        slot = per_day.get(str(row["day"]))
        if slot is not None:
            slot[outcome if outcome in QUESTION_OUTCOMES else "other"] += n
        totals["messages"] += n
        if outcome in totals:
            totals[outcome] += n
        if outcome in QUESTION_OUTCOMES:
            totals["questions"] += n

    feedback = await store.feedback_counts(start, end)
    verdicts = feedback["helpful"] + feedback["not_helpful"]
    rows = await store.unanswered_between(start, end, limit=MAX_UNANSWERED)
    groups = sorted(group_similar(rows), key=lambda g: (g.count, g.newest), reverse=True)
    weeks = await store.active_users_per_week(start, end)
    road = _funnel_road(pathway)
    aliases: dict[str, str] = {}
    if pathway is not None:
        for step_id, _ in road:
            aliases[step_id] = step_id
            aliases.update(dict.fromkeys(pathway.steps[step_id].formerly, step_id))
    reached = await store.step_reach(aliases)

    return {
        "window": {"days": days, "start": start.isoformat(timespec="seconds"),
                   "end": end.isoformat(timespec="seconds")},
        "totals": totals,
        "per_day": list(per_day.values()),
        "shares": {key: _share(totals[outcome], totals["questions"])
                   for outcome, key in SHARES.items()},
        "helpful_rate": _share(feedback["helpful"], verdicts),
        "feedback": feedback,
        "top_topics": [
            {"topic": row["topic_id"], "count": int(row["n"])}
            for row in await store.top_answered_topics(start, end, limit=TOP)
        ],
        "unanswered_groups": [
            {"text": g.text, "count": g.count, "newest": g.newest, "ids": list(g.ids)}
            for g in groups[:TOP]
        ],
        "tickets": await store.ticket_figures(start, end),
        "active_users_per_week": [
            {"week": _iso_week(str(w["week_start"])), "week_start": w["week_start"],
             "users": int(w["users"])}
            for w in weeks
        ],
        "funnel": [
            {"step": step_id, "title": title, "users": reached.get(step_id, 0)}
            for step_id, title in road
        ],
    }


# -- text ------------------------------------------------------------------------------

DAYS_LISTED = 14
WEEKS_LISTED = 8


def _line(text: str, limit: int = 100) -> str:
    """Squash user text onto one line a terminal shows, never obeys."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _percent(value: float | None) -> str:
    """Show a share as a percentage, or a dash when there was nothing to share."""
    return "-" if value is None else f"{value * 100:.0f}%"


def text_report(stats: Mapping[str, Any]) -> str:
    """Render the figures of :func:`collect` as plain lines for staff."""
    win, totals, shares = stats["window"], stats["totals"], stats["shares"]
    first, last = win["start"][:10], win["end"][:10]
    lines = [
        f"IMG Guide statistics: the last {win['days']} day(s), {first} to {last} (UTC)",
        "",
        f"Messages: {totals['messages']} (questions {totals['questions']}, "
        f"small talk {totals['smalltalk']}, 'what next' {totals['my_step']})",
        f"Questions: answered {_percent(shares['answered'])}, offered a choice "
        f"{_percent(shares['offered_choice'])}, declined {_percent(shares['declined'])}, "
        f"fallback {_percent(shares['fallback'])}",
    ]
    verdicts = stats["feedback"]["helpful"] + stats["feedback"]["not_helpful"]
    lines.append(f"Helpful: {_percent(stats['helpful_rate'])} of {verdicts} verdict(s)")

    busy = [d for d in stats["per_day"] if any(d[k] for k in (*QUESTION_OUTCOMES, "other"))]
    lines += ["", "Questions per day (answered / choice / declined / fallback; other):"]
    if not busy:
        lines.append("  none")
    for day in busy[-DAYS_LISTED:]:
        asked = sum(day[k] for k in QUESTION_OUTCOMES)
        lines.append(
            f"  {day['date']}  {asked:>4}  ({day['answer']} / {day['ambiguous']} / "
            f"{day['decline']} / {day['fallback']}; {day['other']})"
        )
    if len(busy) > DAYS_LISTED:
        lines.append(f"  … {len(busy) - DAYS_LISTED} earlier day(s): see --json or the chart")

    lines += ["", "Top topics answered:"]
    lines += [f"  {t['count']:>4}  {t['topic']}" for t in stats["top_topics"]] or ["  none"]

    lines += ["", "Top unanswered (similar questions grouped; newest asked):"]
    lines += [
        f"  {g['count']:>4}  {_line(g['text'])}  ({g['newest'][:10]})"
        for g in stats["unanswered_groups"]
    ] or ["  none"]

    tickets = stats["tickets"]
    median = tickets["median_minutes_to_answer"]
    lines += [
        "",
        f"Tickets: {tickets['open']} open; {tickets['answered']} answered in the window"
        + (f", median {median:.0f} min to answer" if median is not None else ""),
    ]

    lines += ["", "Users active per week:"]
    lines += [
        f"  {w['week']} (from {w['week_start']})  {w['users']}"
        for w in stats["active_users_per_week"][-WEEKS_LISTED:]
    ] or ["  none"]

    lines += ["", "Pathway: users who recorded a status on each step (all time):"]
    lines += [f"  {f['users']:>4}  {f['title']}" for f in stats["funnel"]] or ["  no pathway"]
    return "\n".join(lines) + "\n"


# -- chart -----------------------------------------------------------------------------

#: Bar series of the chart: (per_day key, legend label, colour).
SERIES = (
    ("answer", "answered", "#2e7d32"),
    ("ambiguous", "offered a choice", "#f9a825"),
    ("decline", "declined", "#6d4c41"),
    ("fallback", "fallback", "#c62828"),
    ("other", "small talk / what next", "#90a4ae"),
)


def chart_png(stats: Mapping[str, Any]) -> bytes:
    """Draw messages per day by outcome and the pathway funnel as one PNG."""
    # Imported here: only staff charts need matplotlib, and it takes a while to import.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: no global state, safe off the loop
    from matplotlib.ticker import MaxNLocator

    days = stats["per_day"]
    funnel = stats["funnel"]
    figure = Figure(figsize=(10, 4 + 0.28 * max(len(funnel), 4)), dpi=100,
                    layout="constrained")
    per_day, steps = figure.subplots(
        2, 1, gridspec_kw={"height_ratios": [3, max(len(funnel), 4) * 0.28 + 1]}
    )

    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for key, label, colour in SERIES:
        values = [int(d[key]) for d in days]
        per_day.bar(positions, values, bottom=bottom, label=label, color=colour, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    every = max(1, len(days) // 15)
    per_day.set_xticks(positions[::every], [d["date"][5:] for d in days][::every],
                       rotation=45, ha="right", fontsize=8)
    per_day.yaxis.set_major_locator(MaxNLocator(integer=True))
    per_day.set_ylabel("messages")
    win = stats["window"]
    per_day.set_title(f"Messages per day by outcome, {win['start'][:10]} to {win['end'][:10]}")
    per_day.legend(fontsize=8, loc="upper left")
    per_day.margins(x=0.01)

    if funnel:
        rows = list(range(len(funnel)))
        steps.barh(rows, [f["users"] for f in funnel], color="#1565c0")
        steps.set_yticks(rows, [f["title"] for f in funnel], fontsize=8)
        steps.invert_yaxis()  # the first step on top
        steps.xaxis.set_major_locator(MaxNLocator(integer=True))
        steps.set_xlabel("users with a status on the step")
    else:
        steps.text(0.5, 0.5, "no pathway", ha="center", va="center")
        steps.set_axis_off()
    steps.set_title("Pathway funnel (main road)")

    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
