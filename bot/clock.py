"""Time, injectable: the bot asks a clock instead of the system, so tests can move it.

The calendar, the reminders and the engine read "now" from a :class:`Clock`. The
bot runs on :class:`SystemClock`; tests (and ``--on YYYY-MM-DD`` previews) use
:class:`FixedClock`, which they can move forward by days in microseconds. Days are
UTC days: one rule everywhere, whatever the server's time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> dt.datetime:
        """Return the current time, timezone-aware (UTC)."""
        ...


def today(clock: Clock) -> dt.date:
    """The current UTC day of ``clock``."""
    return clock.now().astimezone(dt.UTC).date()


class SystemClock:
    """The real time."""

    def now(self) -> dt.datetime:
        """Return the system's current time in UTC."""
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved: for tests and previews."""

    def __init__(self, at: dt.datetime | dt.date) -> None:
        if not isinstance(at, dt.datetime):
            at = dt.datetime(at.year, at.month, at.day, 12, tzinfo=dt.UTC)
        elif at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        self.at = at

    def now(self) -> dt.datetime:
        """Return the time the clock is set to."""
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward, e.g. ``advance(days=3)``."""
        self.at += dt.timedelta(**delta)
