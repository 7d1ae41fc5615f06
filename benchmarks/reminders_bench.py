"""The reminder scheduler's cost with many users opted in.

Builds a real SQLite file with ``--users`` users (default 100,000) who turned deadline
reminders on, each with recorded pathway progress (a random point on the main road,
every step before it done), and a calendar with one deadline whose 7-day reminder
falls on the measured day. Then measures, on that file, what the running bot does:

- **plan**: planning the day (:meth:`Scheduler.plan_day`): one INSERT ... SELECT that
  picks the users the deadline still concerns and stores one due reminder each;
- **select**: reading one batch of due reminders (what each sending round starts with);
- **send**: one full sending round (:meth:`Scheduler.send_due`) over every planned
  reminder, with a sender that returns at once: the scheduler's own work per reminder
  (relevance check, marking it sending then sent, each durably committed); Telegram's
  pace (about 30 messages a second through the rate limiter) comes on top and dominates;
- **memory**: peak Python allocations while planning (tracemalloc) and the process's
  peak RSS.

    python -m benchmarks.reminders_bench [--users 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import random
import resource
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path

from bot.bundle import load_bundle
from bot.calendar import Calendar, Event
from bot.clock import FixedClock
from bot.reminders import Outcome, Scheduler, relevance
from bot.reply import Reply
from bot.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = dt.date(2027, 1, 31)
DAY = DEADLINE - dt.timedelta(days=7)


def seed(path: Path, users: int, road: tuple[str, ...], rng: random.Random) -> int:
    """Write ``users`` opted-in users with progress straight into the schema."""
    now = "2026-12-01T00:00:00+00:00"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous=OFF")
        db.executemany(
            "INSERT INTO reminder_settings (user_id, chat_id, deadlines, milestones, "
            "updated_at) VALUES (?, ?, 1, ?, ?)",
            ((u, u, u % 2, now) for u in range(1, users + 1)),
        )
        rows = []
        for user in range(1, users + 1):
            reached = rng.randrange(len(road))
            rows += [(user, step, "done", now) for step in road[:reached]]
            rows.append((user, road[reached], "in_progress", now))
        db.executemany(
            "INSERT INTO progress (user_id, step_id, status, updated_at) VALUES (?, ?, ?, ?)",
            rows,
        )
        return len(rows)


async def main(users: int, directory: Path) -> None:
    bundle, problems = load_bundle(ROOT / "knowledge", learned=False)
    assert bundle is not None, problems
    assert bundle.pathway is not None
    event = Event(
        id="bench-registration-deadline-2027", title="Registration deadline", season=2027,
        date=DEADLINE, kind="deadline", confirmed=True, source="https://www.nrmp.org/",
        steps=("nrmp-registration",),
    )
    bundle = dataclasses.replace(bundle, calendar=Calendar.from_events([event]))
    path = directory / "reminders-bench.sqlite3"
    store = await Store.open(path)
    await store.close()
    started = time.perf_counter()
    progress_rows = seed(path, users, bundle.pathway.route({}), random.Random(7))
    seeded = time.perf_counter() - started

    sent = 0

    async def sender(chat_id: int, reply: Reply) -> Outcome:
        nonlocal sent
        sent += 1
        return Outcome.SENT

    store = await Store.open(path)
    try:
        clock = FixedClock(dt.datetime.combine(DAY, dt.time(15), tzinfo=dt.UTC))
        scheduler = Scheduler(store, lambda: bundle, sender, clock, batch=200)
        rule = relevance(bundle.pathway, event)
        expected = await store.count_reminder_users("deadlines", rule.finished, rule.done)

        tracemalloc.start()
        started = time.perf_counter()
        planned = await scheduler.plan_day(DAY)
        plan_s = time.perf_counter() - started
        _, plan_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        again = await scheduler.plan_day(DAY)  # planning a day twice adds nothing

        selects = []
        for _ in range(20):
            started = time.perf_counter()
            await store.due_reminders(DAY, 200)
            selects.append(time.perf_counter() - started)

        started = time.perf_counter()
        counts = await scheduler.send_due()  # every due reminder, as the bot's round does
        send_s = time.perf_counter() - started
        assert counts.get("sent") == planned == sent, counts
    finally:
        await store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"users opted in            {users:,} ({progress_rows:,} progress rows; "
          f"seeded in {seeded:.1f} s)")
    print(f"reminders planned         {planned:,} (the deadline still concerns {expected:,}; "
          f"planning again added {again})")
    print(f"plan one day              {plan_s * 1000:.0f} ms "
          f"({plan_s / max(planned, 1) * 1e6:.1f} µs per reminder)")
    print(f"select a batch of 200     {sorted(selects)[len(selects) // 2] * 1000:.2f} ms (p50)")
    print(f"send round                {send_s:.1f} s for {sent:,}: "
          f"{send_s / max(sent, 1) * 1000:.2f} ms per reminder of the scheduler's own work "
          f"(Telegram allows ~30/s: {1000 / 30:.0f} ms each)")
    print(f"peak Python memory, plan  {plan_peak / 1024:.0f} KiB")
    print(f"peak RSS                  {rss_mb:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.dir is not None:
        asyncio.run(main(args.users, args.dir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(args.users, Path(tmp)))
