"""Reminders: who gets which, a scheduler that survives restarts, /reminders, step-aware answers.

The scheduler runs on a :class:`FixedClock`, so weeks pass in milliseconds; the store is
a real SQLite file, reopened to play a restart. Messages go to a recording sender (the
boundary the scheduler is given), or through the real application to the strict
offline Bot API of ``tests/tg.py``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import actions as act
from bot.bundle import Bundle, KnowledgeHolder, load_bundle
from bot.chat import render_plain
from bot.clock import FixedClock
from bot.config import Settings
from bot.engine import Engine, User
from bot.reminders import Outcome, Scheduler, preview
from bot.reply import Reply
from bot.store import Store
from tests.conftest import ROOT
from tests.test_calendar import dated_kb
from tests.test_handlers import TOKEN, tg_settings
from tests.tg import USER_ID, BotHarness, RecordingRequest, replies

#: The registration deadline of the test calendar is 14 December 2026: its reminders
#: fall 30, 7 and 1 days before (14 November, 7 and 13 December), sent from 14:00 UTC.
SEVEN_DAYS_BEFORE = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)


class Outbox:
    """The scheduler's sender for tests: records what went to whom, can play a block."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.blocked: set[int] = set()
        self.failing: set[int] = set()

    async def __call__(self, chat_id: int, reply: Reply) -> Outcome:
        if chat_id in self.blocked:
            return Outcome.BLOCKED
        if chat_id in self.failing:
            return Outcome.FAILED
        self.sent.append((chat_id, render_plain(reply)))
        return Outcome.SENT

    def to(self, chat_id: int) -> list[str]:
        return [text for chat, text in self.sent if chat == chat_id]


@pytest.fixture
def dated_bundle(kb_dir: Path) -> Bundle:
    bundle, problems = load_bundle(dated_kb(kb_dir), learned=False)
    assert bundle is not None, problems
    return bundle


def scheduler(store: Store, bundle: Bundle, outbox: Outbox, clock: FixedClock) -> Scheduler:
    return Scheduler(store, lambda: bundle, outbox, clock, send_hour=14)


async def opt_in(store: Store, user_id: int, *, deadlines: bool = True,
                 milestones: bool = False) -> None:
    await store.set_reminders(user_id, user_id, "deadlines", deadlines)
    await store.set_reminders(user_id, user_id, "milestones", milestones)


async def states(store: Store, user_id: int) -> list[tuple[str, int, str, str | None]]:
    data = await store.export(user_id)
    return [
        (r["event_id"], r["days_before"], r["state"], r["reason"])
        for r in data["reminders"]["planned"]
    ]


# -- who is reminded ------------------------------------------------------------------------


async def test_reminders_follow_each_users_recorded_progress(
    dated_bundle: Bundle, store: Store
) -> None:
    await opt_in(store, 1)  # nothing recorded: every deadline concerns them
    await opt_in(store, 2)
    await store.set_status(2, "nrmp-registration", "done")  # registered already
    await opt_in(store, 3)
    await store.set_status(3, "match-result", "done")  # further along: past this
    await opt_in(store, 4, deadlines=False, milestones=True)  # milestones only
    await opt_in(store, 5)
    await store.set_status(5, "nrmp-registration", "in_progress")
    await opt_in(store, 6)
    await store.set_status(6, "h1b-step3", "not_applicable")  # says nothing of progress
    outbox = Outbox()
    await scheduler(store, dated_bundle, outbox, FixedClock(SEVEN_DAYS_BEFORE)).tick()
    assert sorted({chat for chat, _ in outbox.sent}) == [1, 5, 6]
    (message,) = outbox.to(1)
    assert "NRMP standard registration deadline" in message
    assert "14 December 2026, 11:59 p.m. ET (in 7 days)" in message
    assert "nrmp.org" in message and "/reminders" in message


async def test_milestones_go_to_those_who_want_them_on_the_day(
    dated_bundle: Bundle, store: Store
) -> None:
    await opt_in(store, 4, deadlines=False, milestones=True)
    await opt_in(store, 1)  # deadlines only
    outbox = Outbox()
    clock = FixedClock(dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC))  # Match Week starts
    await scheduler(store, dated_bundle, outbox, clock).tick()
    assert [chat for chat, _ in outbox.sent] == [4]
    assert outbox.sent[0][1].startswith("📅 Today: Match Week")
    assert "30 November – 4 December 2026 (starts today, ends in 4 days)" in outbox.sent[0][1]


async def test_nothing_is_sent_before_the_hour_of_sending(
    dated_bundle: Bundle, store: Store
) -> None:
    await opt_in(store, 1)
    outbox = Outbox()
    clock = FixedClock(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC))
    run = scheduler(store, dated_bundle, outbox, clock)
    await run.tick()
    assert outbox.sent == []
    clock.advance(hours=5)
    await run.tick()
    assert len(outbox.to(1)) == 1


# -- restarts, downtime and changes of mind ---------------------------------------------------


async def test_a_restart_sends_nothing_twice(dated_bundle: Bundle, tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    outbox = Outbox()
    clock = FixedClock(SEVEN_DAYS_BEFORE)
    async with await Store.open(path) as store:
        await opt_in(store, 1)
        run = scheduler(store, dated_bundle, outbox, clock)
        await run.tick()
        await run.tick()  # a second look the same day
    assert len(outbox.to(1)) == 1
    async with await Store.open(path) as store:  # the bot restarts
        run = scheduler(store, dated_bundle, outbox, clock)
        assert await run.recover() == 0
        await run.tick()
        assert len(outbox.to(1)) == 1
        clock.advance(days=6)  # 13 December: the 1-day reminder
        await run.tick()
        assert len(outbox.to(1)) == 2 and "(tomorrow)" in outbox.to(1)[1]
        assert [(e, d, s) for e, d, s, _ in await states(store, 1)] == [
            ("nrmp-registration-deadline-2027", 7, "sent"),
            ("nrmp-registration-deadline-2027", 1, "sent"),
        ]


async def test_downtime_loses_nothing_still_relevant_and_sends_one_message(
    dated_bundle: Bundle, tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    outbox = Outbox()
    clock = FixedClock(dt.datetime(2026, 12, 5, 15, 0, tzinfo=dt.UTC))
    async with await Store.open(path) as store:
        await opt_in(store, 1)
        await scheduler(store, dated_bundle, outbox, clock).tick()  # nothing due yet
    assert outbox.sent == []
    clock.advance(days=8)  # down from 5 to 13 December: the 7- and 1-day reminders fell due
    async with await Store.open(path) as store:
        await scheduler(store, dated_bundle, outbox, clock).tick()
        assert len(outbox.to(1)) == 1  # one message, the one true today
        assert "(tomorrow)" in outbox.to(1)[0]
        assert sorted((d, s, r) for _, d, s, r in await states(store, 1)) == [
            (1, "sent", None),
            (7, "dropped", "superseded"),
        ]


async def test_what_fell_due_during_downtime_but_has_passed_is_dropped_and_recorded(
    dated_bundle: Bundle, tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    outbox = Outbox()
    clock = FixedClock(dt.datetime(2026, 12, 13, 9, 0, tzinfo=dt.UTC))  # before sending hour
    async with await Store.open(path) as store:
        await opt_in(store, 1)
        await scheduler(store, dated_bundle, outbox, clock).tick()  # planned, not yet sent
    clock.advance(days=3)  # back on 16 December: the deadline (14th) has passed
    async with await Store.open(path) as store:
        await scheduler(store, dated_bundle, outbox, clock).tick()
        assert outbox.sent == []
        recorded = await states(store, 1)
        assert ("nrmp-registration-deadline-2027", 1, "dropped", "event passed") in recorded


async def _register(store: Store) -> None:
    await store.set_status(1, "nrmp-registration", "done")


async def _turn_off(store: Store) -> None:
    await store.set_reminders(1, 1, "deadlines", False)


@pytest.mark.parametrize(
    ("change", "reason"),
    [(_register, "step already done"), (_turn_off, "turned off")],
    ids=["registered at lunch", "reminders turned off"],
)
async def test_a_change_between_planning_and_sending_drops_the_reminder(
    dated_bundle: Bundle, store: Store, change: Any, reason: str
) -> None:
    await opt_in(store, 1)
    outbox = Outbox()
    clock = FixedClock(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC))
    run = scheduler(store, dated_bundle, outbox, clock)
    await run.tick()  # planned in the morning
    await change(store)
    clock.advance(hours=6)
    await run.tick()
    assert outbox.sent == []
    assert (await states(store, 1))[0][2:] == ("dropped", reason)


async def test_a_half_sent_reminder_of_a_killed_process_is_never_sent_again(
    dated_bundle: Bundle, tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    clock = FixedClock(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC))
    async with await Store.open(path) as store:
        await opt_in(store, 1)
        await scheduler(store, dated_bundle, Outbox(), clock).tick()
        (row,) = await store.due_reminders(dt.date(2026, 12, 7), 10)
        await store.mark_reminders([row["id"]], "sending")  # killed right after this
    clock.advance(hours=6)
    outbox = Outbox()
    async with await Store.open(path) as store:
        run = scheduler(store, dated_bundle, outbox, clock)
        assert await run.recover() == 1
        await run.tick()
        assert outbox.sent == []
        assert (await states(store, 1))[0][2:] == ("dropped", "interrupted while sending")


async def test_a_user_who_blocked_the_bot_is_marked_and_skipped(
    dated_bundle: Bundle, store: Store
) -> None:
    await opt_in(store, 1)
    await opt_in(store, 2)
    outbox = Outbox()
    outbox.blocked.add(1)
    clock = FixedClock(SEVEN_DAYS_BEFORE)
    run = scheduler(store, dated_bundle, outbox, clock)
    assert (await run.tick()).get("blocked") == 1
    assert (await store.reminder_settings(1))["blocked_at"] is not None
    clock.advance(days=6)
    await run.tick()
    assert (await states(store, 1)) == [
        ("nrmp-registration-deadline-2027", 7, "blocked", "user blocked the bot")
    ]  # the 1-day reminder was never planned for them
    assert len(outbox.to(2)) == 2
    # Turning reminders on again (they unblocked and came back) resumes them.
    await store.set_reminders(1, 1, "deadlines", True)
    assert (await store.reminder_settings(1))["blocked_at"] is None


async def test_a_passing_failure_is_retried_then_given_up(
    dated_bundle: Bundle, store: Store
) -> None:
    await opt_in(store, 1)
    outbox = Outbox()
    outbox.failing.add(1)
    run = scheduler(store, dated_bundle, outbox, FixedClock(SEVEN_DAYS_BEFORE))
    for _ in range(3):
        await run.tick()
    assert (await states(store, 1))[0][2:] == ("dropped", "could not be sent")


async def test_telegrams_blocked_answer_reaches_the_scheduler_as_blocked(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    from bot.app import build_application, telegram_sender
    from bot.reminders import reminder_reply

    request = RecordingRequest()
    app = build_application(
        tg_settings(kb_dir), holder=KnowledgeHolder(kb_dir, dated_bundle), store=store,
        request=request, token=TOKEN,
    )
    await app.initialize()
    try:
        send = telegram_sender(app)
        event = dated_bundle.calendar.by_id["nrmp-registration-deadline-2027"]
        reply = reminder_reply(event, dt.date(2026, 12, 7))
        assert await send(USER_ID, reply) is Outcome.SENT
        (call,) = request.of("sendMessage")
        assert "NRMP standard registration deadline" in call.visible
        assert {"m:pathway", "m:reminders"} == set(call.callback_data)
        request.fail_once["sendMessage"] = "Forbidden: bot was blocked by the user"
        assert await send(USER_ID, reply) is Outcome.BLOCKED
        request.fail_once["sendMessage"] = "Bad Request: chat not found"
        assert await send(USER_ID, reply) is Outcome.BLOCKED
    finally:
        await app.shutdown()


# -- /reminders, /forget, /mydata -------------------------------------------------------------


async def harness(bundle: Bundle, store: Store, kb: Path, clock: FixedClock) -> BotHarness:
    from bot.app import build_application

    request = RecordingRequest()
    app = build_application(
        tg_settings(kb), holder=KnowledgeHolder(kb, bundle), store=store, request=request,
        token=TOKEN, clock=clock,
    )
    return await BotHarness(app, request).start()


async def test_reminders_are_turned_on_and_off_in_one_tap(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    tg = await harness(dated_bundle, store, kb_dir, FixedClock(SEVEN_DAYS_BEFORE))
    try:
        (shown,) = replies(await tg.say("/reminders"))
        assert "Deadlines for your next steps: off" in shown.visible
        assert "r:0:1" in shown.callback_data and "r:1:1" in shown.callback_data
        (edited,) = replies(await tg.press("r:0:1"))
        assert "Deadlines for your next steps: on" in edited.visible
        assert "r:0:0" in edited.callback_data
        assert (await store.reminder_settings(USER_ID))["deadlines"] is True
        await tg.press("r:0:0")
        assert (await store.reminder_settings(USER_ID))["deadlines"] is False
        # In a group the switches are not shown: reminders are personal.
        (group,) = replies(await tg.say("/reminders", chat_id=-100200))
        assert "private chat" in group.visible and not group.callback_data
    finally:
        await tg.stop()


async def test_forget_deletes_reminders_and_mydata_shows_them(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    await opt_in(store, USER_ID)
    await scheduler(store, dated_bundle, Outbox(), FixedClock(SEVEN_DAYS_BEFORE)).tick()
    data = await store.export(USER_ID)
    assert data["reminders"]["settings"]["deadlines"] == 1
    assert data["reminders"]["planned"][0]["state"] == "sent"
    engine = Engine(KnowledgeHolder(kb_dir, dated_bundle), store, Settings().matching)
    shown = render_plain(await engine.mydata(User(USER_ID)))
    assert "Reminders: deadlines (1 planned or sent)" in shown
    await engine.handle_action(User(USER_ID), act.Confirm("forget", True))
    data = await store.export(USER_ID)
    assert data["reminders"] == {"settings": None, "planned": []}
    outbox = Outbox()
    clock = FixedClock(SEVEN_DAYS_BEFORE)
    clock.advance(days=6)
    await scheduler(store, dated_bundle, outbox, clock).tick()
    assert outbox.sent == []


async def test_the_end_of_the_pathway_offers_reminders(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    tg = await harness(dated_bundle, store, kb_dir, FixedClock(SEVEN_DAYS_BEFORE))
    try:
        # "No, it is not listed" then "I understand, stop here" ends the road.
        await tg.say("/pathway")
        await tg.press("p:school-eligibility:not-listed")
        (end,) = replies(await tg.press("p:school-not-listed:stop"))
        assert "end of the pathway" in end.visible
        assert "m:reminders" in end.callback_data
        (screen,) = replies(await tg.press("m:reminders"))
        assert "Reminders" in screen.visible and "r:0:1" in screen.callback_data
    finally:
        await tg.stop()


# -- answers that know the user's step ------------------------------------------------------


async def test_what_next_answers_from_the_users_progress(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    engine = Engine(KnowledgeHolder(kb_dir, dated_bundle), store, Settings().matching,
                    FixedClock(SEVEN_DAYS_BEFORE))
    me = User(41)
    fresh = render_plain(await engine.handle_text(me, "What should I do next?"))
    assert "haven't recorded any steps" in fresh
    road = dated_bundle.pathway.route({})  # type: ignore[union-attr]
    for step in road[: road.index("nrmp-registration")]:
        await store.set_status(41, step, "done")
    reply = await engine.handle_text(me, "where am i")
    shown = render_plain(reply)
    assert "Next to do: NRMP registration" in shown or "Next to do: " in shown
    title = dated_bundle.pathway.steps["nrmp-registration"].title  # type: ignore[union-attr]
    assert f"Next to do: {title}" in shown
    assert "NRMP standard registration deadline, 14 December 2026, 11:59 p.m. ET (in 7 days)" in (
        shown
    )
    assert reply.kind == "my_step"
    # Nothing is logged for staff: it is not an unanswered question.
    assert await store.unanswered() == []


async def test_an_answer_about_a_recorded_step_adds_one_personal_line(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    engine = Engine(KnowledgeHolder(kb_dir, dated_bundle), store, Settings().matching,
                    FixedClock(SEVEN_DAYS_BEFORE))
    topic = dated_bundle.kb.by_id["gme-nrmp-registration"]
    before = render_plain(await engine.handle_text(User(42), topic.canonical_question))
    assert "Your pathway" not in before
    await store.set_status(42, "nrmp-registration", "in_progress")
    during = render_plain(await engine.handle_text(User(42), topic.canonical_question))
    title = dated_bundle.pathway.steps["nrmp-registration"].title  # type: ignore[union-attr]
    assert f"📍 Your pathway: you marked “{title}” as in progress." in during
    assert "Next date: NRMP standard registration deadline" in during
    await store.set_status(42, "nrmp-registration", "done")
    after = render_plain(await engine.handle_text(User(42), topic.canonical_question))
    assert f"you marked “{title}” as done." in after and "Next date" not in after
    # In a group chat the bot says nothing about anyone's progress.
    group = render_plain(
        await engine.handle_text(User(42, chat_id=-100200), topic.canonical_question)
    )
    assert "Your pathway" not in group


# -- the staff preview -----------------------------------------------------------------------


def test_reminders_preview_shows_a_days_plan_without_sending(
    dated_bundle: Bundle, kb_dir: Path, tmp_path: Path
) -> None:
    import asyncio

    database = tmp_path / "bot.sqlite3"

    async def users() -> None:
        async with await Store.open(database) as store:
            await opt_in(store, 1)
            await opt_in(store, 2)
            await store.set_status(2, "nrmp-registration", "done")
            await opt_in(store, 3)

    asyncio.run(users())
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge:\n  path: {kb_dir}\nstorage:\n  path: {database}\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "reminders", "--preview", "--on", "2026-12-07",
         "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nrmp-registration-deadline-2027" in result.stdout
    assert "7 day(s) before; deadlines) → 2 user(s)" in result.stdout
    assert "(in 7 days)" in result.stdout
    # A preview writes nothing: no reminder was planned.
    async def planned() -> dict[str, int]:
        async with await Store.open(database) as store:
            return await store.reminder_counts()

    assert asyncio.run(planned()) == {}


async def test_preview_counts_match_what_planning_adds(
    dated_bundle: Bundle, store: Store
) -> None:
    for user in range(1, 8):
        await opt_in(store, user, milestones=user % 2 == 0)
    await store.set_status(3, "nrmp-registration", "not_applicable")
    day = dt.date(2026, 12, 7)
    (item,) = await preview(store, dated_bundle, day)
    clock = FixedClock(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC))
    added = await scheduler(store, dated_bundle, Outbox(), clock).plan_day(day)
    assert item.users == added == 6


async def test_a_pathway_step_shows_its_next_date_and_renders_named_events(
    kb_dir: Path, store: Store
) -> None:
    path = dated_kb(kb_dir)
    pathway_file = path / "pathway.yaml"
    text = pathway_file.read_text(encoding="utf-8")
    marker = "  - id: nrmp-registration\n"
    at = text.index("explain: >-\n", text.index(marker)) + len("explain: >-\n")
    pathway_file.write_text(
        text[:at] + "      Standard deadline: {{nrmp-registration-deadline}}.\n" + text[at:],
        encoding="utf-8",
    )
    bundle, problems = load_bundle(path, learned=False)
    assert bundle is not None, problems
    clock = FixedClock(SEVEN_DAYS_BEFORE)
    engine = Engine(KnowledgeHolder(path, bundle), store, Settings().matching, clock)
    go = act.PathNav("go", "nrmp-registration")
    step = render_plain(await engine.handle_action(User(43), go))
    assert "Standard deadline: 14 December 2026, 11:59 p.m. ET (in 7 days)." in step
    assert "📅 NRMP standard registration deadline: 14 December 2026" in step
    assert "{{" not in step
    await store.set_status(43, "nrmp-registration", "done")
    done = render_plain(await engine.handle_action(User(43), go))
    assert "📅" not in done  # a finished step needs no countdown


async def test_the_running_bot_sends_due_reminders_through_telegram(
    dated_bundle: Bundle, store: Store, kb_dir: Path
) -> None:
    import asyncio

    from bot.app import build_application

    await opt_in(store, USER_ID)
    request = RecordingRequest()
    app = build_application(
        tg_settings(kb_dir), holder=KnowledgeHolder(kb_dir, dated_bundle), store=store,
        request=request, token=TOKEN, clock=FixedClock(SEVEN_DAYS_BEFORE),
    )
    tg = await BotHarness(app, request).start(post_init=True)
    try:
        for _ in range(200):  # the scheduler's first round runs as the bot starts
            if request.of("sendMessage"):
                break
            await asyncio.sleep(0.01)
        (call,) = request.of("sendMessage")
        assert call.chat_id == USER_ID
        assert "Reminder: NRMP standard registration deadline" in call.visible
    finally:
        await tg.stop()
    assert (await states(store, USER_ID))[0][2] == "sent"
