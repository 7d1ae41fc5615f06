"""Staff statistics: the figures a staff member reads, from a real SQLite store.

Rows are written through the store's own methods, stamped at chosen times by replacing
the store's clock (``bot.store._now``); tickets, which have no writer yet, are inserted
with SQL. The same figures are read through ``collect``, the CLI and ``/stats``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot import stats
from bot.bundle import Bundle, KnowledgeHolder
from bot.pathway import Pathway
from bot.stats import collect, group_similar, text_report
from bot.store import Store
from tests.test_cli import run
from tests.test_handlers import KNOWLEDGE, open_harness, tg_settings
from tests.tg import GROUP_ID, USER_ID, replies

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)  # a Monday
PNG = b"\x89PNG\r\n\x1a\n"


def stamp(monkeypatch: pytest.MonkeyPatch, when: dt.datetime) -> None:
    """Make the store stamp what it writes next with ``when``."""
    monkeypatch.setattr("bot.store._now", lambda: when.isoformat(timespec="seconds"))


def day(days_before: int, hour: int = 12) -> dt.datetime:
    """A time ``days_before`` days before NOW's day, at ``hour``."""
    return NOW.replace(hour=hour) - dt.timedelta(days=days_before)


async def filled(path: Path, fill: Callable[[Store], Awaitable[None]]) -> None:
    """Write with ``fill`` and close the store (close waits for background rows)."""
    async with await Store.open(path) as store:
        await fill(store)


async def figures(path: Path, pathway: Pathway | None = None, days: int = 30) -> dict[str, Any]:
    """Collect the statistics of a database as of NOW."""
    async with await Store.open(path) as store:
        return await collect(store, pathway, days, now=NOW)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "stats.sqlite3"


async def test_outcomes_per_day_shares_and_top_topics(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill(store: Store) -> None:
        stamp(monkeypatch, day(0))
        for user, outcome, topic in [
            (1, "answer", "usmle-step1"), (1, "answer", "usmle-step1"), (1, "ambiguous", None),
            (1, "fallback", None), (1, "smalltalk", None),
            (2, "decline", "decline-plab"), (2, "answer", "ecfmg-oet-medicine"),
            (2, "my_step", None),
        ]:
            store.record_asked(user, outcome, topic)
        stamp(monkeypatch, day(2, hour=23))
        store.record_asked(3, "fallback", None)
        store.record_asked(3, "answer", "usmle-step1")
        stamp(monkeypatch, day(30))  # one day before a 30-day window starts
        for _ in range(5):
            store.record_asked(4, "answer", "visa-j1")

    await filled(db, fill)
    found = await figures(db)

    assert found["window"]["days"] == 30
    by_date = {d["date"]: d for d in found["per_day"]}
    assert len(found["per_day"]) == 30
    assert found["per_day"][0]["date"] == "2025-02-09" and found["per_day"][-1]["date"] == (
        "2025-03-10"
    )
    assert by_date["2025-03-10"] == {
        "date": "2025-03-10", "answer": 3, "ambiguous": 1, "decline": 1, "fallback": 1,
        "other": 2,
    }
    assert by_date["2025-03-08"] == {
        "date": "2025-03-08", "answer": 1, "ambiguous": 0, "decline": 0, "fallback": 1,
        "other": 0,
    }
    assert all(sum(v for k, v in d.items() if k != "date") == 0
               for date, d in by_date.items() if date not in ("2025-03-08", "2025-03-10"))
    totals = found["totals"]
    assert (totals["messages"], totals["questions"]) == (10, 8)
    assert (totals["smalltalk"], totals["my_step"]) == (1, 1)
    assert found["shares"] == {
        "answered": 0.5, "offered_choice": 0.125, "declined": 0.125, "fallback": 0.25
    }
    assert found["top_topics"] == [
        {"topic": "usmle-step1", "count": 3}, {"topic": "ecfmg-oet-medicine", "count": 1}
    ]

    # A shorter window leaves the older day out.
    today_only = await figures(db, days=1)
    assert [d["date"] for d in today_only["per_day"]] == ["2025-03-10"]
    assert today_only["totals"]["questions"] == 6
    assert today_only["top_topics"][0] == {"topic": "usmle-step1", "count": 2}
    # A longer one takes the old rows in.
    assert (await figures(db, days=31))["top_topics"][0] == {"topic": "visa-j1", "count": 5}


async def test_nothing_recorded_gives_zeros_and_no_rates(db: Path) -> None:
    found = await figures(db, days=7)
    assert found["totals"]["messages"] == 0
    assert found["shares"] == dict.fromkeys(
        ("answered", "offered_choice", "declined", "fallback")
    )
    assert found["helpful_rate"] is None
    assert found["tickets"] == {"open": 0, "answered": 0, "median_minutes_to_answer": None}
    assert found["unanswered_groups"] == [] and found["funnel"] == []
    assert "none" in text_report(found)


async def test_helpful_rate_counts_the_verdicts_of_the_window(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill(store: Store) -> None:
        stamp(monkeypatch, day(1))
        await store.record_feedback(1, "usmle-step1", True)
        await store.record_feedback(2, "usmle-step1", False)
        await store.record_feedback(3, "visa-j1", True)
        stamp(monkeypatch, day(40))
        await store.record_feedback(4, "visa-j1", False)
        await store.record_feedback(5, "visa-j1", False)

    await filled(db, fill)
    found = await figures(db)
    assert found["feedback"] == {"helpful": 2, "not_helpful": 1}
    assert found["helpful_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert (await figures(db, days=60))["helpful_rate"] == pytest.approx(0.4)


def rows(*texts: str) -> list[dict[str, object]]:
    """Unanswered rows, the first the oldest, one minute apart."""
    return [
        {"id": i + 1, "text": t,
         "asked_at": (NOW + dt.timedelta(minutes=i)).isoformat(timespec="seconds")}
        for i, t in enumerate(texts)
    ]


def test_group_similar_merges_near_duplicates_and_keeps_different_ones_apart() -> None:
    groups = group_similar(rows(
        "Can a dentist get ECFMG certification?",       # 1
        "banana bread recipe",                           # 2
        "can a DENTIST get ecfmg certification",         # 3
        "Can dentists get ECFMG certified??",            # 4
        "🙂",                                            # 5
        "how much does a residency interview suit cost",  # 6
        "🙂",                                            # 7
    ))
    by_ids = {g.ids: g for g in groups}
    assert set(by_ids) == {(4, 3, 1), (2,), (7, 5), (6,)}
    dentist = by_ids[(4, 3, 1)]
    assert dentist.count == 3
    assert dentist.text == "Can dentists get ECFMG certified??"  # the newest asking
    assert dentist.newest == (NOW + dt.timedelta(minutes=3)).isoformat(timespec="seconds")
    # Newest group first, whatever order the rows came in.
    assert [g.ids[0] for g in groups] == [7, 6, 4, 2]
    assert group_similar(list(reversed(rows("a b c", "x y z")))) == group_similar(
        rows("a b c", "x y z")
    )
    # The threshold decides: at 100 only same-word questions meet.
    strict = group_similar(rows("Can dentists get ECFMG certified", "can a dentist get ecfmg"
                                " certification"), threshold=100)
    assert len(strict) == 2
    assert group_similar([]) == []


async def test_unanswered_groups_come_from_the_window_biggest_first(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill(store: Store) -> None:
        stamp(monkeypatch, day(40))
        await store.log_question(9, "is the OET accepted for pathway 3", "fallback", None, None)
        stamp(monkeypatch, day(3))
        await store.log_question(1, "is OET accepted for pathway 3?", "fallback", None, None)
        await store.log_question(2, "can I bring my cat to the usa", "fallback", None, None)
        chosen = await store.log_question(3, "oet accepted pathway 3", "ambiguous", None, None)
        await store.log_question(4, "oet is it accepted pathway 3", "ambiguous", None, None)
        stamp(monkeypatch, day(1))
        assert await store.mark_none_of_these(3, chosen)
        await store.record_feedback(5, "ecfmg-pathways", False)
        await store.add_feedback_comment(5, "ecfmg-pathways", "Is OET accepted for Pathway 3")

    await filled(db, fill)
    groups = (await figures(db))["unanswered_groups"]
    assert [(g["count"], len(g["ids"])) for g in groups] == [(3, 3), (1, 1)]
    assert groups[0]["text"] == "Is OET accepted for Pathway 3"  # the newest (a comment)
    assert groups[0]["newest"].startswith("2025-03-09")
    assert groups[1]["text"] == "can I bring my cat to the usa"
    # Still ambiguous (id 4) is not unanswered; the 40-day-old one is outside the window.
    assert (await figures(db, days=60))["unanswered_groups"][0]["count"] == 4


def add_ticket(path: Path, state: str, created: dt.datetime,
               answered: dt.datetime | None = None) -> None:
    """Insert a ticket (the store has no ticket writer yet)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO tickets (user_id, chat_id, question, state, created_at, answered_at) "
            "VALUES (1, 1, 'a question', ?, ?, ?)",
            (state, created.isoformat(timespec="seconds"),
             answered.isoformat(timespec="seconds") if answered else None),
        )
    conn.close()


async def test_tickets_open_and_median_minutes_to_answer(db: Path) -> None:
    await filled(db, lambda store: asyncio.sleep(0))
    minutes = dt.timedelta(minutes=1)
    add_ticket(db, "open", day(1))
    add_ticket(db, "open", day(50))
    for wait in (10, 90, 20):
        add_ticket(db, "answered", day(2), day(2) + wait * minutes)
    add_ticket(db, "closed", day(3), day(3) + 40 * minutes)  # answered, then closed
    add_ticket(db, "answered", day(45), day(45) + 1000 * minutes)  # answered long ago
    found = await figures(db)
    assert found["tickets"] == {"open": 2, "answered": 4, "median_minutes_to_answer": 30.0}
    add_ticket(db, "answered", day(1), day(1) + 95 * minutes)
    assert (await figures(db))["tickets"]["median_minutes_to_answer"] == 40.0
    assert (await figures(db, days=60))["tickets"]["answered"] == 6


async def test_active_users_per_iso_week(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fill(store: Store) -> None:
        for when, users in [
            (day(0), (1, 2, 2)),  # Monday 10 March: week 11
            (day(1), (1, 3, 3)),  # Sunday 9 March: still week 10
            (day(7), (4,)),  # Monday 3 March: week 10
            (day(8), (5,)),  # Sunday 2 March: week 9
        ]:
            stamp(monkeypatch, when)
            for user in users:
                store.record_asked(user, "answer", "usmle-step1")

    await filled(db, fill)
    weeks = (await figures(db))["active_users_per_week"]
    assert weeks == [
        {"week": "2025-W09", "week_start": "2025-02-24", "users": 1},
        {"week": "2025-W10", "week_start": "2025-03-03", "users": 3},
        {"week": "2025-W11", "week_start": "2025-03-10", "users": 2},
    ]
    assert [w["week"] for w in (await figures(db, days=7))["active_users_per_week"]] == [
        "2025-W10", "2025-W11"
    ]


async def test_funnel_counts_users_per_step_of_the_main_road(
    db: Path, real_bundle: Bundle
) -> None:
    pathway = real_bundle.pathway
    assert pathway is not None
    road = pathway.route({})
    assert "pathway-accepted" in road and "soap" not in road

    async def fill(store: Store) -> None:
        await store.set_status(1, road[0], "done")
        await store.set_status(1, road[1], "in_progress")
        await store.set_status(2, road[0], "done")
        await store.set_status(3, road[0], "not_started")
        await store.set_status(4, "soap", "done")  # off the main road
        await store.set_status(5, "choose-pathway", "done")  # a former id of pathway-accepted
        await store.set_status(6, "pathway-6", "blocked")
        await store.set_status(6, "pathway-accepted", "done")  # one user, counted once

    await filled(db, fill)
    funnel = (await figures(db, pathway))["funnel"]
    assert [f["step"] for f in funnel] == list(road)
    users = {f["step"]: f["users"] for f in funnel}
    assert users[road[0]] == 2 and users[road[1]] == 1
    assert users["pathway-accepted"] == 2
    assert sum(users.values()) == 5
    assert funnel[0]["title"] == pathway.steps[road[0]].title


async def test_text_report_shows_control_characters_escaped(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fill(store: Store) -> None:
        stamp(monkeypatch, day(0))
        await store.log_question(1, "zebra\x1b]0;pwned\x07 \x1b[2J\u202egnp.exe", "fallback",
                                 None, None)

    await filled(db, fill)
    report = text_report(await figures(db))
    assert not any(c in report for c in "\x1b\x07\u202e")
    assert "zebra\\x1b]0;pwned\\x07 \\x1b[2J\\u202egnp.exe" in report


def test_chart_is_a_png(real_bundle: Bundle) -> None:
    found = asyncio.run(_in_memory_figures(real_bundle))
    png = stats.chart_png(found)
    assert png.startswith(PNG) and len(png) > 10_000


async def _in_memory_figures(bundle: Bundle) -> dict[str, Any]:
    async with await Store.open(":memory:") as store:
        store.record_asked(1, "answer", "usmle-step1")
        await store.set_status(1, "school-eligibility", "done")
        return await collect(store, bundle.pathway, 30)


def test_cli_stats_json_is_one_object_and_respects_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "db.sqlite3"
    config = tmp_path / "c.yaml"
    config.write_text(f"storage:\n  path: {database}\n")
    now = dt.datetime.now(dt.UTC)

    async def fill(store: Store) -> None:
        stamp(monkeypatch, now - dt.timedelta(days=5))
        store.record_asked(1, "answer", "usmle-step1")
        await store.log_question(1, "old \x1b[31mred question", "fallback", None, None)
        stamp(monkeypatch, now)
        store.record_asked(2, "fallback", None)
        store.record_asked(2, "smalltalk", None)
        await store.set_status(2, "school-eligibility", "done")

    asyncio.run(filled(database, fill))
    result = run("stats", "--config", str(config), "--json", "--days", "3")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    found = json.loads(result.stdout)
    assert set(found) == {
        "window", "totals", "per_day", "shares", "helpful_rate", "feedback", "top_topics",
        "unanswered_groups", "tickets", "active_users_per_week", "funnel",
    }
    assert found["window"]["days"] == 3 and len(found["per_day"]) == 3
    assert (found["totals"]["messages"], found["totals"]["questions"]) == (2, 1)
    assert found["shares"]["fallback"] == 1.0
    assert found["unanswered_groups"] == [] and found["top_topics"] == []
    assert found["funnel"][0] == {
        "step": "school-eligibility", "title": found["funnel"][0]["title"], "users": 1
    }

    week = json.loads(run("stats", "--config", str(config), "--json", "--days", "7").stdout)
    assert week["totals"]["questions"] == 2
    assert week["top_topics"] == [{"topic": "usmle-step1", "count": 1}]
    assert week["unanswered_groups"][0]["text"] == "old \x1b[31mred question"

    table = run("stats", "--config", str(config), "--days", "7")
    assert table.returncode == 0, table.stderr
    assert "\x1b" not in table.stdout and "old \\x1b[31mred question" in table.stdout

    for bad in ("0", "3651", "week"):
        refused = run("stats", "--config", str(config), "--days", bad)
        assert refused.returncode == 2 and "--days" in refused.stderr


async def test_stats_command_for_an_admin_and_for_anyone_else(
    real_bundle: Bundle, store: Store
) -> None:
    admin = 4242
    harness = await open_harness(
        tg_settings(admins=(admin,)), KnowledgeHolder(KNOWLEDGE, real_bundle), store
    )
    try:
        await harness.say("banana bread recipe")  # a fallback, logged for staff

        shown = replies(await harness.say("/stats", user_id=admin))
        assert [c.method for c in shown] == ["sendMessage", "sendPhoto"]
        assert all(c.chat_id == admin for c in shown)
        assert "banana bread recipe" in shown[0].visible
        assert shown[1].files["photo"].content.startswith(PNG)

        unknown = replies(await harness.say("/nosuchcommand"))
        refused = replies(await harness.say("/stats"))
        assert [c.method for c in refused] == ["sendMessage"]
        assert refused[0].visible == unknown[0].visible
        assert refused[0].chat_id == USER_ID

        # Not in another group, even for an admin: the figures are for staff's eyes.
        assert replies(await harness.say("/stats", user_id=admin, chat_id=GROUP_ID)) == []
        # In the staff chat, yes.
        harness.app.bot_data["engine"].staff.chat_id = GROUP_ID
        in_staff = replies(await harness.say("/stats", user_id=admin, chat_id=GROUP_ID))
        assert [c.method for c in in_staff] == ["sendMessage", "sendPhoto"]
    finally:
        await harness.stop()
