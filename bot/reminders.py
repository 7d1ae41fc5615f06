"""Reminders of the season calendar's dates, planned in SQLite and sent by a scheduler.

Users turn two kinds on or off (:data:`KINDS`): *deadlines* (events of kind
``deadline``) and *milestones* (events of kind ``milestone``). Each event is
reminded of on its ``remind`` days before it. Who is reminded depends on their
recorded progress: a user who finished a step the event concerns, or marked done a
step that comes after it on the pathway's main road, is not (:func:`relevance`).

The :class:`Scheduler` works from the database, never from memory:

- *planning* a day inserts one ``due`` row per user and reminder, once (a unique key),
  for every day from the last planned one up to today, so days the bot was down are
  planned when it starts again;
- *sending* takes due rows, checks each one still applies (the event has not passed,
  the step is not done, the user still wants it: if not, it is ``dropped`` with the
  reason), marks it ``sending``, sends it and marks it ``sent``; a user who blocked the
  bot is marked and skipped from then on. A row a killed process left ``sending`` is
  dropped on start, never sent twice.

Time comes from a :class:`~bot.clock.Clock`, so tests run weeks in milliseconds. The
sender is a function given by the front end (Telegram's goes through the rate limiter).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot import actions as act
from bot import views
from bot.bundle import Bundle
from bot.calendar import Calendar, Event, format_day
from bot.clock import Clock, today
from bot.pathway import Pathway
from bot.reply import Button, Reply, Span, bold, italic, text
from bot.store import FINISHED_STATUSES, Store

logger = logging.getLogger(__name__)

#: Reminder kinds (the user's switches) and the event kind each one covers.
KINDS = {"deadlines": "deadline", "milestones": "milestone"}
KIND_LABELS = {
    "deadlines": "Deadlines for your next steps",
    "milestones": "Season milestones (ERAS opens, Match Day…)",
}
#: How far back a restarted bot plans the days it missed.
CATCH_UP_DAYS = 30
LAST_PLANNED = "last_planned_day"
MAX_ATTEMPTS = 3


class Outcome(StrEnum):
    """What happened to one send."""

    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot or deleted the chat
    FAILED = "failed"  # a passing error: try again later


Sender = Callable[[int, Reply], Awaitable[Outcome]]


def kind_of(event: Event) -> str:
    """The reminder kind (user switch) an event belongs to."""
    return "milestones" if event.kind == "milestone" else "deadlines"


@dataclass(frozen=True)
class Relevance:
    """Which recorded steps make an event no longer concern a user.

    ``finished``: the event's own steps, done or not applicable. ``done``: the steps
    after them on the pathway's main road, marked done (someone who recorded their
    Match result has no use for the registration deadline; a later step marked "not
    applicable" says nothing about progress). Both with the old ids of renamed steps.
    """

    finished: tuple[str, ...] = ()
    done: tuple[str, ...] = ()

    def excludes(self, statuses: Mapping[str, str]) -> bool:
        """Tell whether recorded ``statuses`` take the user past the event."""
        return any(statuses.get(s) in FINISHED_STATUSES for s in self.finished) or any(
            statuses.get(s) == "done" for s in self.done
        )


@functools.lru_cache(maxsize=256)
def relevance(pathway: Pathway | None, event: Event) -> Relevance:
    """Work out :class:`Relevance` for ``event`` from the pathway (once per pair: a sending
    round asks it for every due reminder)."""
    if pathway is None or not event.steps:
        return Relevance(event.steps)
    road = pathway.route({})
    places = [road.index(s) for s in event.steps if s in road]
    later = road[max(places) + 1 :] if places else ()

    def with_former(ids: Iterable[str]) -> tuple[str, ...]:
        ids = tuple(ids)
        return tuple(dict.fromkeys([*ids, *(o for i in ids for o in _formerly(pathway, i))]))

    return Relevance(with_former(event.steps), with_former(later))


def _formerly(pathway: Pathway, step_id: str) -> tuple[str, ...]:
    step = pathway.step(step_id)
    return tuple(step.formerly) if step is not None else ()


def due_on(calendar: Calendar, day: dt.date) -> Iterator[tuple[Event, int]]:
    """The (event, days before) pairs whose reminder day is ``day``."""
    for event in calendar.events:
        for days in event.reminder_days():
            if event.date - dt.timedelta(days=days) == day:
                yield event, days


def reminder_reply(event: Event, day: dt.date) -> Reply:
    """The message a user gets about ``event`` on ``day``."""
    if event.kind == "deadline":
        head = "⏰ Reminder: "
    else:
        head = "📅 Today: " if event.date == day else "📅 Coming up: "
    spans: list[str | Span] = [
        head,
        bold(event.title),
        f"\n{event.describe(day)}.\n\n",
        italic("Source: "),
        views.source_link(event),
        italic(f" ({event.season} Match season). Official pages win if they differ."),
        "\n\nYou get this because you turned reminders on. /reminders changes that.",
    ]
    return Reply(
        text(*spans),
        (
            (
                Button("🧭 My pathway", act.Menu("pathway")),
                Button("🔔 Reminder settings", act.Menu("reminders")),
            ),
        ),
        kind="reminder",
    )


def settings_reply(settings: dict[str, object], *, edit: bool = False, note: str = "") -> Reply:
    """The /reminders screen: each kind with a one-tap switch."""
    lines = []
    rows = []
    for kind, label in KIND_LABELS.items():
        on = bool(settings.get(kind))
        lines.append(f"{'🔔' if on else '🔕'} {label}: {'on' if on else 'off'}")
        rows.append(
            (Button(f"{'Turn off' if on else 'Turn on'}: {kind}", act.Remind(kind, not on)),)
        )
    rows.append((Button("📅 Key dates", act.Menu("dates")),))
    intro = f"{note}\n\n" if note else ""
    return Reply(
        text(
            intro,
            bold("Reminders"),
            "\n" + "\n".join(lines) + "\n\n"
            "Deadline reminders come 30, 7 and 1 days before each deadline that concerns a "
            "step you have not finished (mark steps in /pathway or /progress and I stop "
            "reminding you of them). Milestones come on the day.",
        ),
        tuple(rows),
        kind="reminders",
        edit=edit,
    )


@dataclass(frozen=True)
class Planned:
    """One reminder of a day's plan, for previews."""

    event: Event
    days_before: int
    kind: str
    users: int
    reply: Reply


class Scheduler:
    """Plans each day's reminders into the store and sends the due ones."""

    def __init__(
        self,
        store: Store,
        bundle: Callable[[], Bundle],
        sender: Sender,
        clock: Clock,
        *,
        send_hour: int = 14,
        batch: int = 200,
        parallel: int = 8,
    ) -> None:
        self.store = store
        self.bundle = bundle
        self.sender = sender
        self.clock = clock
        self.send_hour = send_hour
        self.batch = batch
        self.parallel = parallel

    async def recover(self) -> int:
        """On start: settle what a stopped process left half-sent (never resent)."""
        count = await self.store.interrupted_reminders()
        if count:
            logger.warning("%d reminder(s) were interrupted while sending; not resent", count)
        return count

    async def plan(self) -> int:
        """Plan every day from the last planned one up to today; return rows added."""
        day = today(self.clock)
        last = await self.store.scheduler_value(LAST_PLANNED)
        start = day
        if last:
            try:
                start = max(dt.date.fromisoformat(last) + dt.timedelta(days=1),
                            day - dt.timedelta(days=CATCH_UP_DAYS))
            except ValueError:
                start = day
        added = 0
        current = start
        while current <= day:
            added += await self.plan_day(current)
            current += dt.timedelta(days=1)
        if start <= day:
            await self.store.set_scheduler_value(LAST_PLANNED, day.isoformat())
        return added

    async def plan_day(self, day: dt.date) -> int:
        """Plan the reminders whose day is ``day``; planning a day twice adds nothing."""
        bundle = self.bundle()
        added = 0
        for event, days in due_on(bundle.calendar, day):
            rule = relevance(bundle.pathway, event)
            added += await self.store.plan_reminders(
                event.id, days, kind_of(event), day, rule.finished, rule.done
            )
        return added

    def _sending_day(self) -> dt.date:
        """Reminders due up to this day may go out now (today's from ``send_hour``)."""
        now = self.clock.now().astimezone(dt.UTC)
        return now.date() if now.hour >= self.send_hour else now.date() - dt.timedelta(days=1)

    async def send_due(self) -> dict[str, int]:
        """Send what is due, dropping what no longer applies; return counts by outcome."""
        counts: dict[str, int] = {}
        day = self._sending_day()
        after = 0  # by id: a reminder that failed this round is tried in the next one
        # A few sends in flight at once: Telegram answers in tens of milliseconds and the
        # rate limiter, not this loop, sets the pace (about 30 messages a second).
        gate = asyncio.Semaphore(self.parallel)

        async def one(row: dict[str, Any]) -> None:
            async with gate:
                await self._send_one(row, counts)

        while rows := await self.store.due_reminders(day, self.batch, after=after):
            after = int(rows[-1]["id"])
            keep, superseded = _supersede(rows)
            if superseded:
                await self.store.mark_reminders(superseded, "dropped", "superseded")
                counts["dropped"] = counts.get("dropped", 0) + len(superseded)
            await asyncio.gather(*(one(row) for row in keep))
        return counts

    async def _send_one(self, row: dict[str, Any], counts: dict[str, int]) -> None:
        bundle = self.bundle()
        now_day = today(self.clock)
        reason = await self._no_longer(bundle, row, now_day)
        row_id = int(row["id"])
        user_id = int(row["user_id"])
        if reason:
            await self.store.mark_reminders([row_id], "dropped", reason)
            counts["dropped"] = counts.get("dropped", 0) + 1
            return
        event = bundle.calendar.by_id[str(row["event_id"])]
        await self.store.mark_reminders([row_id], "sending")
        try:
            outcome = await self.sender(int(row["chat_id"]), reminder_reply(event, now_day))
        except Exception:
            logger.exception("reminder %d could not be sent", row_id)
            outcome = Outcome.FAILED
        if outcome is Outcome.SENT:
            await self.store.mark_reminders([row_id], "sent")
        elif outcome is Outcome.BLOCKED:
            await self.store.mark_blocked(user_id)
        elif int(row["attempts"]) + 1 >= MAX_ATTEMPTS:
            await self.store.mark_reminders([row_id], "dropped", "could not be sent")
        else:
            await self.store.mark_reminders([row_id], "due")  # tried again next round
            counts[str(outcome)] = counts.get(str(outcome), 0) + 1
            return
        counts[str(outcome)] = counts.get(str(outcome), 0) + 1

    async def _no_longer(self, bundle: Bundle, row: dict[str, Any], day: dt.date) -> str:
        """Say why a due reminder no longer applies, or "" if it still does."""
        event = bundle.calendar.by_id.get(str(row["event_id"]))
        if event is None:
            return "event removed from the calendar"
        if event.passed(day):
            return "event passed"
        if row["blocked_at"]:
            return "user blocked the bot"
        if not row[str(row["kind"])]:
            return "turned off"
        statuses = await self.store.step_statuses(int(row["user_id"]))
        if relevance(bundle.pathway, event).excludes(statuses):
            return "step already done"
        return ""

    async def tick(self) -> dict[str, int]:
        """Plan up to today, then send what is due."""
        await self.plan()
        return await self.send_due()

    async def run(self, interval: float = 60.0) -> None:
        """Recover, then tick every ``interval`` seconds until cancelled."""
        await self.recover()
        while True:
            try:
                counts = await self.tick()
                if counts:
                    logger.info("reminders: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
            except Exception:
                logger.exception("reminder scheduler failed; will try again")
            await asyncio.sleep(interval)


def _supersede(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """Of several due reminders of one event for one user, keep the nearest only.

    After downtime the 7-day and the 1-day reminder may both be due: one message, the
    one that is true today, is enough.
    """
    best: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:
        key = (int(row["user_id"]), str(row["event_id"]))
        kept = best.get(key)
        if kept is None or int(row["days_before"]) < int(kept["days_before"]):
            best[key] = row
    keep_ids = {int(r["id"]) for r in best.values()}
    return (
        [r for r in rows if int(r["id"]) in keep_ids],
        [int(r["id"]) for r in rows if int(r["id"]) not in keep_ids],
    )


async def preview(store: Store, bundle: Bundle, day: dt.date) -> list[Planned]:
    """What planning ``day`` would send, with how many users each, without writing."""
    found = []
    for event, days in due_on(bundle.calendar, day):
        kind = kind_of(event)
        rule = relevance(bundle.pathway, event)
        users = await store.count_reminder_users(kind, rule.finished, rule.done)
        found.append(Planned(event, days, kind, users, reminder_reply(event, day)))
    return found


def describe_plan(item: Planned) -> str:
    """One line for staff: the event, when, how many users."""
    before = "on the day" if item.days_before == 0 else f"{item.days_before} day(s) before"
    return (
        f"{item.event.id}: {item.event.title}, {format_day(item.event.date)} "
        f"({before}; {item.kind}) → {item.users} user(s)"
    )
