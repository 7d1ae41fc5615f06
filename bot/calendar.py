"""The season calendar: the dated events of each Match season, kept as data.

``knowledge/calendar.yaml`` (edited by staff) lists events: ERAS, ResidencyCAS,
NRMP and ECFMG Pathways dates of each Match season, each with its source and
whether the date was seen on the official page (``confirmed``). An event's id ends
with its season (``nrmp-rol-deadline-2027``); the id without that suffix names the
*series* (``nrmp-rol-deadline``), the same event in every season.

Answers name events instead of typing dates: ``{{nrmp-rol-deadline}}`` in a topic's
answer becomes the current event of that series, rendered against today ("3 March
2027, 9 p.m. ET (in 91 days)" or "passed on 3 March 2026"); ``{{...-2027}}`` names
one season's event. :func:`load_calendar` reads and checks the file once and
returns a frozen :class:`Calendar` (or every problem as ``file:line: message``),
plus warnings that do not stop the bot (an event already past that no later season
replaces). Everything else here is pure: "today" is always an argument.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.yamlio import (
    LineDict,
    LineList,
    Problem,
    YamlSyntaxError,
    load_yaml,
    parse_date,
    value_kind,
)

SUPPORTED_VERSIONS = frozenset({1})
EVENT_FIELDS = (
    "id", "title", "season", "date", "end", "time", "kind", "confirmed", "source", "steps",
    "remind", "notes",
)
REQUIRED_FIELDS = ("id", "title", "season", "date", "confirmed", "source")
#: deadline: the applicant must act by then; milestone: a season event worth knowing.
EVENT_KINDS = ("deadline", "milestone")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-(\d{4})$")
MAX_TITLE = 60
MAX_TIME = 30
MAX_RANGE_DAYS = 366
#: Days before an event on which reminders go out, unless the event says otherwise.
DEFAULT_REMIND = {"deadline": (30, 7, 1), "milestone": (0,)}
MAX_REMIND_DAYS = 120
#: ``{{event-or-series}}`` in an answer; spaces inside the braces are allowed.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]{1,80})\s*\}\}")


def format_day(value: dt.date) -> str:
    """Write a date one way throughout: 3 June 2026."""
    return f"{value.day} {value:%B %Y}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


@dataclass(frozen=True)
class Event:
    """One dated event of one Match season."""

    id: str
    title: str
    season: int
    date: dt.date
    end: dt.date | None = None
    time: str = ""
    kind: str = "deadline"
    confirmed: bool = False
    source: str = ""
    steps: tuple[str, ...] = ()
    remind: tuple[int, ...] = ()
    file: str = ""
    line: int = 0

    @property
    def series(self) -> str:
        """The event's name without its season: the same event in every season."""
        return self.id.rsplit("-", 1)[0]

    @property
    def site(self) -> str:
        """The source's site, as a short link label (``nrmp.org``)."""
        host = self.source.split("//", 1)[-1].split("/", 1)[0]
        return host.removeprefix("www.")

    @property
    def last_day(self) -> dt.date:
        """The last day of a range, or the date itself."""
        return self.end or self.date

    def passed(self, today: dt.date) -> bool:
        """Tell whether the event (its last day) is before ``today``."""
        return self.last_day < today

    def when(self) -> str:
        """The date (or range) and time, without any relation to today."""
        if self.end is None:
            text = format_day(self.date)
        elif (self.date.year, self.date.month) == (self.end.year, self.end.month):
            text = f"{self.date.day}–{format_day(self.end)}"
        elif self.date.year == self.end.year:
            text = f"{self.date.day} {self.date:%B} – {format_day(self.end)}"
        else:
            text = f"{format_day(self.date)} – {format_day(self.end)}"
        return f"{text}, {self.time}" if self.time else text

    def relative(self, today: dt.date) -> str:
        """Say where the event stands from ``today``: "in 12 days", "today", "passed"."""
        if self.passed(today):
            return f"passed on {format_day(self.last_day)}"
        if self.date > today:
            ahead = (self.date - today).days
            return "tomorrow" if ahead == 1 else f"in {_days(ahead)}"
        if self.end is None or self.end == today:
            return "today" if self.end is None else "ends today"
        left = _days((self.end - today).days)
        return f"{'starts today' if self.date == today else 'under way'}, ends in {left}"

    def describe(self, today: dt.date) -> str:
        """The event's date for a sentence: date, where it stands, and if unconfirmed."""
        where = self.relative(today)
        if self.passed(today):
            text = f"{where} ({self.season} Match)"
        else:
            text = f"{self.when()} ({where})"
        if not self.confirmed:
            text += " (not yet confirmed on the official page)"
        return text

    def reminder_days(self) -> tuple[int, ...]:
        """Days before the event on which to remind, largest first."""
        return self.remind or DEFAULT_REMIND.get(self.kind, (0,))


@dataclass(frozen=True)
class Calendar:
    """Every event, by id and by series, each series in date order."""

    events: tuple[Event, ...] = ()
    by_id: Mapping[str, Event] = field(default_factory=lambda: MappingProxyType({}))
    series: Mapping[str, tuple[Event, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Calendar:
        """Build the indexes once; the result is immutable."""
        ordered = tuple(sorted(events, key=lambda e: (e.date, e.id)))
        grouped: dict[str, list[Event]] = {}
        for event in ordered:
            grouped.setdefault(event.series, []).append(event)
        return cls(
            events=ordered,
            by_id=MappingProxyType({e.id: e for e in ordered}),
            series=MappingProxyType({k: tuple(v) for k, v in grouped.items()}),
        )

    def known(self, name: str) -> bool:
        """Tell whether ``name`` is an event id or a series."""
        return name in self.by_id or name in self.series

    def resolve(self, name: str, today: dt.date) -> Event | None:
        """Return the event ``name`` means today: an id, or the current one of a series.

        The current event of a series is its first one not yet passed; when every one
        has passed, the latest (which the answer then shows as passed, with its season).
        """
        event = self.by_id.get(name)
        if event is not None:
            return event
        series = self.series.get(name)
        if not series:
            return None
        return next((e for e in series if not e.passed(today)), series[-1])

    def upcoming(self, today: dt.date, limit: int | None = None) -> list[Event]:
        """Events not yet passed on ``today``, soonest first."""
        found = [e for e in self.events if not e.passed(today)]
        return found if limit is None else found[:limit]

    def next_for_steps(self, steps: Collection[str], today: dt.date) -> Event | None:
        """The soonest event not yet passed that concerns one of ``steps``."""
        return next(
            (e for e in self.events if not e.passed(today) and set(e.steps) & set(steps)), None
        )

    def render(self, text: str, today: dt.date) -> str:
        """Replace every ``{{event}}`` in ``text`` with its date as of ``today``."""
        if "{{" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            event = self.resolve(name, today)
            # check() refuses unknown names; a stale one shows as text, never as braces.
            if event is None:
                return "(date not available)"
            if name not in self.by_id and event.passed(today):
                return self.unpublished(event, today)
            return event.describe(today)

        return PLACEHOLDER.sub(replace, text)

    @staticmethod
    def unpublished(event: Event, today: dt.date) -> str:
        """Give a series' last listed date, saying a later season's is not listed yet.

        The season named as missing is the one the reader is in (several may have been
        skipped: "2024 Match; the 2027 date ..."), or the next after the last listed.
        Not "not yet published": the later date may be out on the official page before
        staff add it here, so the user is sent to check that page.
        """
        note = ", not confirmed" if not event.confirmed else ""
        wanted = max(event.season + 1, current_season(today))
        return (
            f"{event.when()} ({event.season} Match{note}; the {wanted} date is not "
            "in my calendar yet)"
        )

    def stale(self, today: dt.date) -> list[Event]:
        """Events already past whose series has no later season, most recent first."""
        found = [events[-1] for events in self.series.values() if events[-1].passed(today)]
        return sorted(found, key=lambda e: e.last_day, reverse=True)


def current_season(today: dt.date) -> int:
    """The Match season a reader is in: Match Day falls in March, so from April the next."""
    return today.year + 1 if today.month >= 4 else today.year


def references(text: str) -> list[str]:
    """Return the event names an answer's placeholders use, in order."""
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------


class _Checker:
    """Collects every problem of the calendar file at its line."""

    def __init__(self, name: str, step_ids: Collection[str] | None) -> None:
        self.name = name
        self.step_ids = step_ids
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.name, line, message))

    def check(self, data: Any) -> list[Event]:
        if not isinstance(data, LineDict):
            self.add(1, "calendar.yaml must be a mapping with 'version: 1' and 'events:'")
            return []
        for key, line in getattr(data, "duplicates", []):
            self.add(line, f"the file has the field '{key}' twice; keep one of them")
        for key in data:
            if key not in ("version", "events"):
                self.add(
                    data.line_of(key),
                    f"unknown top-level field '{key}'; calendar.yaml holds 'version' and "
                    "'events' only",
                )
        if data.get("version") not in SUPPORTED_VERSIONS:
            self.add(data.line_of("version"), "calendar.yaml needs 'version: 1' at the top")
        raw = data.get("events")
        if not isinstance(raw, LineList):
            self.add(
                data.line_of("events"),
                f"'events' must be a list of events ('- id: ...'), not {value_kind(raw)}",
            )
            return []
        events: list[Event] = []
        first_at: dict[str, int] = {}
        for index, item in enumerate(raw):
            event = self._event(item, raw.line_of(index))
            if event is None:
                continue
            if event.id in first_at:
                self.add(
                    event.line,
                    f"duplicate event id '{event.id}' (also at line {first_at[event.id]}); "
                    "ids must be unique",
                )
                continue
            first_at[event.id] = event.line
            events.append(event)
        return events

    def _event(self, raw: Any, line: int) -> Event | None:
        if not isinstance(raw, LineDict):
            self.add(line, f"each event must be a mapping with 'id', 'title', 'date'..., "
                           f"not {value_kind(raw)}")
            return None
        for key, key_line in getattr(raw, "duplicates", []):
            self.add(key_line, f"this event has the field '{key}' twice; keep one of them")
        event_id = raw.get("id")
        what = f"event '{event_id}'" if isinstance(event_id, str) else "this event"
        for key in raw:
            if key not in EVENT_FIELDS:
                self.add(
                    raw.line_of(key),
                    f"{what} has an unknown field '{key}'; allowed: {', '.join(EVENT_FIELDS)}",
                )
        missing = [key for key in REQUIRED_FIELDS if key not in raw]
        for key in missing:
            self.add(raw.line, f"{what} is missing the required field '{key}'")
        ok = not missing

        season = raw.get("season")
        if "season" in raw and (
            isinstance(season, bool) or not isinstance(season, int) or not 2000 <= season <= 2100
        ):
            self.add(raw.line_of("season"), f"'season' of {what} must be the Match year, "
                                            "e.g. 2027")
            ok = False
        if "id" in raw:
            match = ID_PATTERN.match(event_id) if isinstance(event_id, str) else None
            if match is None:
                self.add(
                    raw.line_of("id"),
                    f"id {event_id!r} must be lowercase letters, digits and hyphens ending "
                    "with its season, e.g. 'nrmp-rol-deadline-2027'",
                )
                ok = False
            elif isinstance(season, int) and match.group(1) != str(season):
                self.add(
                    raw.line_of("id"),
                    f"id '{event_id}' must end with its season ('-{season}'): answers name "
                    "the event without the season and get the current one",
                )
                ok = False
        title = raw.get("title")
        if "title" in raw and (not isinstance(title, str) or not title.strip()):
            self.add(raw.line_of("title"), f"'title' of {what} must be text")
            ok = False
        elif isinstance(title, str) and len(title) > MAX_TITLE:
            self.add(raw.line_of("title"), f"'title' of {what} is {len(title)} characters; "
                                           f"keep it to {MAX_TITLE}")
            ok = False
        start = parse_date(raw.get("date"))
        if "date" in raw and start is None:
            self.add(raw.line_of("date"), f"'date' of {what} must be written YYYY-MM-DD, "
                                          "e.g. 2027-03-03")
            ok = False
        end: dt.date | None = None
        if "end" in raw:
            end = parse_date(raw["end"])
            if end is None:
                self.add(raw.line_of("end"), f"'end' of {what} must be written YYYY-MM-DD")
                ok = False
            elif start is not None and not start < end <= start + dt.timedelta(MAX_RANGE_DAYS):
                self.add(
                    raw.line_of("end"),
                    f"'end' of {what} must come after 'date' (within a year); for a "
                    "single day, leave 'end' out",
                )
                ok = False
        time = raw.get("time", "")
        if not isinstance(time, str) or len(time) > MAX_TIME:
            self.add(raw.line_of("time"), f"'time' of {what} must be short text, e.g. "
                                          "'9 p.m. ET'")
            ok = False
        kind = raw.get("kind", "deadline")
        if kind not in EVENT_KINDS:
            self.add(raw.line_of("kind"), f"'kind' of {what} must be one of: "
                                          f"{', '.join(EVENT_KINDS)} (not {kind!r})")
            ok = False
        confirmed = raw.get("confirmed")
        if "confirmed" in raw and not isinstance(confirmed, bool):
            self.add(
                raw.line_of("confirmed"),
                f"'confirmed' of {what} must be true (seen on the official page) or false",
            )
            ok = False
        source = raw.get("source")
        if "source" in raw and not _valid_url(source):
            self.add(raw.line_of("source"), f"'source' of {what} must be the https:// address "
                                            "of the page the date was read on")
            ok = False
        steps = self._steps(raw, what)
        remind = self._remind(raw, what)
        if steps is None or remind is None or not ok:
            return None
        assert isinstance(event_id, str) and isinstance(title, str) and start is not None
        assert isinstance(season, int)
        return Event(
            id=event_id,
            title=title.strip(),
            season=season,
            date=start,
            end=end,
            time=time.strip(),
            kind=str(kind),
            confirmed=bool(confirmed),
            source=str(source),
            steps=steps,
            remind=remind,
            file=self.name,
            line=raw.line,
        )

    def _steps(self, raw: LineDict, what: str) -> tuple[str, ...] | None:
        value = raw.get("steps", [])
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            self.add(raw.line_of("steps"), f"'steps' of {what} must be a list of pathway "
                                           "step ids, e.g. [rank-order-list]")
            return None
        if self.step_ids is not None:
            for step in value:
                if step not in self.step_ids:
                    self.add(raw.line_of("steps"), f"{what} names the step '{step}', which "
                                                   "is not a step of pathway.yaml")
                    return None
        return tuple(value)

    def _remind(self, raw: LineDict, what: str) -> tuple[int, ...] | None:
        value = raw.get("remind", [])
        if not isinstance(value, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_REMIND_DAYS
            for d in value
        ):
            self.add(raw.line_of("remind"), f"'remind' of {what} must be a list of days "
                                            f"before the event (0 to {MAX_REMIND_DAYS}), "
                                            "e.g. [30, 7, 1]")
            return None
        return tuple(sorted(set(value), reverse=True))


def _valid_url(value: object) -> bool:
    from bot.knowledge import valid_url

    return isinstance(value, str) and valid_url(value.strip())


def load_calendar(
    path: Path, step_ids: Collection[str] | None = None, name: str | None = None
) -> tuple[Calendar | None, list[Problem]]:
    """Read and check ``calendar.yaml``; return the calendar or every problem found."""
    name = name or str(path)
    try:
        data = load_yaml(path, name)
    except YamlSyntaxError as exc:
        return None, [exc.problem]
    checker = _Checker(name, step_ids)
    events = checker.check(data)
    if checker.problems:
        return None, checker.problems
    return Calendar.from_events(events), []


def warnings(calendar: Calendar, today: dt.date) -> list[Problem]:
    """What staff should add: series whose latest event has passed."""
    return [
        Problem(
            e.file,
            e.line,
            f"warning: '{e.id}' passed on {format_day(e.last_day)} and no later season of "
            f"'{e.series}' is listed; add the next season's date when it is published",
        )
        for e in calendar.stale(today)
    ]
