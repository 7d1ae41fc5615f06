"""The season calendar: the validator, dates in answers, ``dates --json`` and /dates."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

from bot.bundle import KnowledgeHolder, load_bundle
from bot.calendar import Calendar, Event, load_calendar, references
from bot.chat import render_plain
from bot.clock import FixedClock
from bot.config import Settings
from bot.engine import Engine, answer_record
from bot.store import Store
from tests.conftest import ROOT

TODAY = dt.date(2026, 12, 2)

#: A calendar written for these tests: dates around TODAY, one past series.
CALENDAR = """\
version: 1
events:
  - id: nrmp-registration-deadline-2027
    title: NRMP standard registration deadline
    season: 2027
    date: 2026-12-14
    time: 11:59 p.m. ET
    kind: deadline
    confirmed: true
    source: https://www.nrmp.org/test-calendar
    steps: [nrmp-registration]
  - id: nrmp-rol-deadline-2026
    title: NRMP rank order list deadline
    season: 2026
    date: 2026-03-04
    kind: deadline
    confirmed: true
    source: https://www.nrmp.org/test-calendar-2026
    steps: [rank-order-list]
  - id: nrmp-rol-deadline-2027
    title: NRMP rank order list deadline
    season: 2027
    date: 2027-03-03
    time: 9 p.m. ET
    kind: deadline
    confirmed: false
    source: https://example.org/a-blog-quoting-nrmp
    steps: [rank-order-list]
  - id: match-week-2027
    title: Match Week
    season: 2027
    date: 2026-11-30
    end: 2026-12-04
    kind: milestone
    confirmed: true
    source: https://www.nrmp.org/test-calendar
    steps: [match-result]
  - id: pathways-deadline-2024
    title: ECFMG Pathways application deadline
    season: 2024
    date: 2024-02-15
    kind: deadline
    confirmed: true
    source: https://www.ecfmg.org/test-pathways
    steps: [pathway-deadline]
"""

DATED_TOPIC = """\
version: 1
topics:
  - id: test-dated-answer
    title: Test dated answer
    questions: [when is the zebra quokka registration deadline]
    answer: >-
      Register by {{nrmp-registration-deadline}}. Ranking closes {{nrmp-rol-deadline}}.
      Pathways: {{pathways-deadline}}.
"""


def dated_kb(kb_dir: Path, calendar: str = CALENDAR) -> Path:
    """The real knowledge copy with the test calendar and one topic that names events.

    Events the real answers name that the test calendar lacks are added as long-past
    stubs (2020, concerning no step), so they change no test's dates or reminders.
    """
    known = set(re.findall(r"- id: ([a-z0-9-]+)", calendar))
    known |= {name.rsplit("-", 1)[0] for name in known}
    named: set[str] = set()
    for path in kb_dir.glob("*.yaml"):
        if path.name != "calendar.yaml":
            named |= set(references(path.read_text(encoding="utf-8")))
    stubs = ""
    for name in sorted(named - known):
        event_id = name if re.search(r"-\d{4}$", name) else f"{name}-2020"
        stubs += (
            f"  - id: {event_id}\n    title: Stub {name}\n    season: {event_id[-4:]}\n"
            "    date: 2020-01-01\n    confirmed: true\n    source: https://www.nrmp.org/stub\n"
        )
    (kb_dir / "calendar.yaml").write_text(calendar + stubs, encoding="utf-8")
    (kb_dir / "zz-dated.yaml").write_text(DATED_TOPIC, encoding="utf-8")
    return kb_dir


def dated_engine(kb_dir: Path, store: Store, clock: FixedClock) -> Engine:
    """The engine over the test calendar's knowledge copy, on ``clock``."""
    path = dated_kb(kb_dir)
    bundle, problems = load_bundle(path, learned=False)
    assert bundle is not None, problems
    return Engine(KnowledgeHolder(path, bundle), store, Settings().matching, clock)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd,
        timeout=120, check=False,
    )


def event(**fields: object) -> Event:
    base: dict[str, object] = {
        "id": "x-2027", "title": "X", "season": 2027, "date": TODAY, "confirmed": True,
        "source": "https://www.nrmp.org/x",
    }
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


# -- how an event reads, relative to today ---------------------------------------------


def test_an_event_says_how_far_off_it_is() -> None:
    ahead = event(date=TODAY + dt.timedelta(days=12), time="9 p.m. ET")
    assert ahead.describe(TODAY) == "14 December 2026, 9 p.m. ET (in 12 days)"
    assert event(date=TODAY).describe(TODAY) == "2 December 2026 (today)"
    assert event(date=TODAY + dt.timedelta(days=1)).relative(TODAY) == "tomorrow"
    past = event(date=dt.date(2026, 3, 4), season=2026)
    assert past.describe(TODAY) == "passed on 4 March 2026 (2026 Match)"


def test_a_range_under_way_says_when_it_ends() -> None:
    week = event(date=dt.date(2026, 11, 30), end=dt.date(2026, 12, 4))
    assert week.when() == "30 November – 4 December 2026"
    assert week.relative(TODAY) == "under way, ends in 2 days"
    assert week.relative(dt.date(2026, 12, 4)) == "ends today"
    assert week.relative(dt.date(2026, 12, 5)) == "passed on 4 December 2026"


def test_an_unconfirmed_date_says_so() -> None:
    guess = event(date=dt.date(2027, 3, 3), confirmed=False)
    assert "not yet confirmed on the official page" in guess.describe(TODAY)


def test_a_series_name_gives_the_current_season_and_never_an_expired_one() -> None:
    calendar = Calendar.from_events(
        [
            event(id="rol-2026", season=2026, date=dt.date(2026, 3, 4)),
            event(id="rol-2027", season=2027, date=dt.date(2027, 3, 3)),
        ]
    )
    assert calendar.render("{{rol}}", TODAY) == "3 March 2027 (in 91 days)"
    # A season named explicitly stays that season: shown as passed, with its date.
    assert calendar.render("{{ rol-2026 }}", TODAY) == "passed on 4 March 2026 (2026 Match)"
    # After the last listed season: the last official date, never shown as upcoming.
    later = calendar.render("{{rol}}", dt.date(2027, 4, 1))
    assert later == "3 March 2027 (2027 Match; the 2028 date is not in my calendar yet)"


# -- the validator ------------------------------------------------------------------------


def test_the_project_calendar_loads_and_checks() -> None:
    result = run_cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calendar events" in result.stderr


def test_a_broken_calendar_is_reported_at_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(
        """\
version: 1
events:
  - id: nrmp-rol-deadline
    title: No season in the id
    season: 2027
    date: 2027-03-03
    confirmed: true
    source: https://www.nrmp.org/x
  - id: match-day-2027
    title: Match Day
    season: 2027
    date: 2027-02-30
    confirmed: yes please
    source: https://www.nrmp.org/x
  - id: soap-2027
    title: SOAP
    season: 2027
    date: 2027-03-15
    end: 2027-03-10
    confirmed: false
    source: not a url
    steps: [no-such-step]
  - id: eras-opens-2027
    title: ERAS opens
    season: 2026
    date: 2026-06-03
    confirmed: true
""",
        encoding="utf-8",
    )
    calendar, problems = load_calendar(path, {"soap", "rank-order-list"}, "calendar.yaml")
    assert calendar is None
    found = {(p.line, p.message.split(" ")[0]) for p in problems}
    text = "\n".join(str(p) for p in problems)
    assert "calendar.yaml:3: id 'nrmp-rol-deadline' must be" in text
    assert "calendar.yaml:12: 'date' of event 'match-day-2027' must be written YYYY-MM-DD" in text
    assert "calendar.yaml:13: 'confirmed' of event 'match-day-2027' must be true" in text
    assert "calendar.yaml:19: 'end' of event 'soap-2027' must come after 'date'" in text
    assert "calendar.yaml:21: 'source' of event 'soap-2027'" in text
    assert "names the step 'no-such-step'" in text
    assert "calendar.yaml:23: id 'eras-opens-2027' must end with its season ('-2026')" in text
    assert "is missing the required field 'source'" in text
    assert len(found) >= 8


def test_an_impossible_date_is_a_problem_not_a_crash(kb_dir: Path) -> None:
    # PyYAML itself raises on 30 February; the loader must report it at its line.
    path = kb_dir / "general.yaml"
    text = path.read_text(encoding="utf-8")
    first = text.index("reviewed: ")
    path.write_text(text[:first] + "reviewed: 2026-02-30" + text[first + 20:], encoding="utf-8")
    result = run_cli("check", str(kb_dir))
    assert result.returncode == 1
    assert "'reviewed' of topic" in result.stdout and "must be a date" in result.stdout
    assert "Traceback" not in result.stderr


def test_an_answer_naming_a_missing_event_is_refused(kb_dir: Path) -> None:
    dated_kb(kb_dir)
    topic = (kb_dir / "zz-dated.yaml").read_text(encoding="utf-8")
    (kb_dir / "zz-dated.yaml").write_text(
        topic.replace("{{pathways-deadline}}", "{{pathway-deadlin}}"), encoding="utf-8"
    )
    result = run_cli("check", str(kb_dir))
    assert result.returncode == 1
    assert "zz-dated.yaml:3: topic 'test-dated-answer' names the event '{{pathway-deadlin}}'" in (
        result.stdout
    )


def test_check_warns_about_a_series_whose_last_date_has_passed(kb_dir: Path) -> None:
    dated_kb(kb_dir)
    result = run_cli("check", str(kb_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""  # warnings are not problems
    assert "warning: 'pathways-deadline-2024' passed on 15 February 2024" in result.stderr
    # A series with a later season listed is not warned about.
    assert "'nrmp-rol-deadline-2026'" not in result.stderr


# -- dates in answers ---------------------------------------------------------------------


def test_answers_show_event_dates_as_of_today(kb_dir: Path) -> None:
    bundle, problems = load_bundle(dated_kb(kb_dir), learned=False)
    assert bundle is not None, problems
    record = answer_record(
        bundle, Settings().matching, "when is the zebra quokka registration deadline", TODAY
    )
    assert record["topic"] == "test-dated-answer"
    assert "14 December 2026, 11:59 p.m. ET (in 12 days)" in record["text"]
    assert "3 March 2027, 9 p.m. ET (in 91 days) (not yet confirmed" in record["text"]
    # Seasons skipped since the last listed one: the reader's own season is the one named.
    assert "Pathways: 15 February 2024 (2024 Match; the 2027 date is not in my calendar" in (
        record["text"]
    )
    assert "{{" not in record["text"]
    # The same answer a month later: the deadline has passed, and says so.
    later = answer_record(
        bundle, Settings().matching, "when is the zebra quokka registration deadline",
        dt.date(2027, 1, 10),
    )
    assert "(2027 Match; the 2028 date is not in my calendar yet)" in later["text"]
    assert "in 12 days" not in later["text"]


async def test_the_engine_renders_dates_with_its_clock(kb_dir: Path, store: Store) -> None:
    clock = FixedClock(TODAY)
    engine = dated_engine(kb_dir, store, clock)
    from bot.engine import User

    first = render_plain(await engine.handle_text(User(5), "zebra quokka registration deadline"))
    assert "(in 12 days)" in first
    clock.advance(days=11)
    second = render_plain(await engine.handle_text(User(5), "zebra quokka registration deadline"))
    assert "(tomorrow)" in second


# -- dates --json and /dates ---------------------------------------------------------------


def test_dates_json_is_the_contract(kb_dir: Path) -> None:
    dated_kb(kb_dir)
    result = run_cli("dates", "--json", "--on", "2026-12-02", "--kb", str(kb_dir))
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert [e["id"] for e in events] == [
        "match-week-2027", "nrmp-registration-deadline-2027", "nrmp-rol-deadline-2027",
    ]
    for item in events:
        assert {"id", "title", "date", "confirmed", "season", "source"} <= set(item)
        assert isinstance(item["confirmed"], bool) and isinstance(item["season"], int)
        dt.date.fromisoformat(item["date"])
    assert events[2]["confirmed"] is False
    later = run_cli("dates", "--json", "--on", "2027-01-01", "--kb", str(kb_dir))
    later = json.loads(later.stdout)
    assert [e["id"] for e in later] == ["nrmp-rol-deadline-2027"]


def test_dates_refuses_a_bad_day() -> None:
    result = run_cli("dates", "--on", "2027-02-30")
    assert result.returncode == 2
    assert "is not a date written YYYY-MM-DD" in result.stderr


async def test_dates_in_chat_lists_upcoming_events_with_sources(
    kb_dir: Path, store: Store
) -> None:
    reply = dated_engine(kb_dir, store, FixedClock(TODAY)).dates()
    shown = render_plain(reply)
    assert "NRMP standard registration deadline: 14 December 2026, 11:59 p.m. ET (in 12 days)" in (
        shown
    )
    assert "Match Week: 30 November – 4 December 2026 (under way, ends in 2 days)" in shown
    assert "not yet confirmed" in shown  # the 2027 rank order list date
    assert "nrmp.org" in shown
    # The stale series is shown with its last date, as not listed for a later season.
    assert "ECFMG Pathways application deadline: 15 February 2024 (2024 Match)" in shown
    assert shown.index("Match Week") < shown.index("NRMP standard registration")


async def test_dates_says_plainly_when_nothing_upcoming_is_published(
    kb_dir: Path, store: Store
) -> None:
    shown = render_plain(dated_engine(kb_dir, store, FixedClock(dt.date(2027, 6, 1))).dates())
    assert "No upcoming date in my calendar has been published yet." in shown
    # Its last date came from a blog: it says so here too.
    last = "NRMP rank order list deadline: 3 March 2027, 9 p.m. ET (2027 Match, not confirmed)"
    assert last in shown
