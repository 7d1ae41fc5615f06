"""Measure Telegram updates handled per second by one process, offline.

Run from the repository root::

    .venv/bin/python -m benchmarks.throughput [--updates N] [--users N] [--concurrency N]
                                              [--profile]

The real application from ``build_application`` runs over the real knowledge base
and a real SQLite store in a temporary file; Bot API calls go to the recording
request of ``tests/tg.py`` (non-strict, so its own HTML checks are not timed). The
updates are real ``telegram.Update`` objects: text questions from many users, mixed
to resemble traffic (most answered, some "did you mean", some unanswered, which are
logged to SQLite), fed through ``Application.process_update``. It prints updates/s
and p50/p95 milliseconds per update (also by the engine's decision); ``--concurrency N`` processes
N updates at once as ``concurrent_updates`` does in production; ``--profile`` runs
the sequential pass under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so that `tests.tg` imports when run as a script
    sys.path.insert(0, str(ROOT))

from bot.app import build_application  # noqa: E402
from bot.bundle import KnowledgeHolder, load_bundle  # noqa: E402
from bot.config import KnowledgeSettings, Settings, TelegramSettings  # noqa: E402
from bot.engine import answer_record  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.tg import BotHarness, RecordingRequest, text_update  # noqa: E402

KNOWLEDGE = ROOT / "knowledge"
QUERIES = ROOT / "tests" / "data" / "queries"
AMBIGUOUS = ["step", "visa", "fees", "ecfmg certification", "usmle", "oet", "match", "eras"]
FALLBACK = [
    "banana bread recipe",
    "what is the weather in paris tomorrow",
    "can you recommend a good laptop",
    "who won the football game yesterday",
    "how do i renew my driving licence",
    "best pizza near me",
]


def questions() -> list[str]:
    """Return held-out user questions (the ones the bot should answer)."""
    found: list[str] = []
    for file in sorted(QUERIES.glob("*.yaml")):
        for case in yaml.safe_load(file.read_text(encoding="utf-8")) or []:
            found.append(str(case["q"]))
    return found


def traffic(count: int, users: int, seed: int = 7) -> list[tuple[int, str]]:
    """Return (user id, text): about 70% answerable, 15% vague, 15% off-topic questions."""
    rng = random.Random(seed)
    answerable = questions()
    mix: list[tuple[int, str]] = []
    for _ in range(count):
        roll = rng.random()
        pool = answerable if roll < 0.70 else AMBIGUOUS if roll < 0.85 else FALLBACK
        mix.append((1000 + rng.randrange(users), rng.choice(pool)))
    return mix


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of values."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(updates: int, users: int, concurrency: int, profile: bool) -> dict[str, Any]:
    """Build the app, warm it up, then time the traffic; return the figures."""
    bundle, problems = load_bundle(KNOWLEDGE)
    assert bundle is not None, problems
    settings = Settings(
        telegram=TelegramSettings(concurrent_updates=1, rate_limiter=False),
        knowledge=KnowledgeSettings(path=str(KNOWLEDGE), reload_interval=0),
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "bench.sqlite3")
        request = RecordingRequest(strict=False)
        app = build_application(
            settings, holder=KnowledgeHolder(KNOWLEDGE, bundle), store=store,
            request=request, token="123:bench",
        )
        harness = await BotHarness(app, request).start()
        try:
            for user, text in traffic(200, users, seed=1):  # warm-up
                await app.process_update(text_update(app.bot, text, user_id=user))
            request.clear()
            mix = traffic(updates, users)
            prepared = [
                (text_update(app.bot, text, user_id=user),
                 answer_record(bundle, settings.matching, text)["status"])
                for user, text in mix
            ]

            latencies: dict[str, list[float]] = defaultdict(list)
            profiler = cProfile.Profile() if profile else None

            async def one(update: Any, kind: str) -> None:
                started = time.perf_counter()
                await app.process_update(update)
                latencies[kind].append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            if profiler:
                profiler.enable()
            if concurrency <= 1:
                for update, kind in prepared:
                    await one(update, kind)
            else:
                gate = asyncio.Semaphore(concurrency)

                async def gated(update: Any, kind: str) -> None:
                    async with gate:
                        await one(update, kind)

                await asyncio.gather(*(gated(u, k) for u, k in prepared))
            if profiler:
                profiler.disable()
            wall = time.perf_counter() - started
            logged = len(await store.unanswered(limit=1_000_000))
        finally:
            await harness.stop()
            await store.close()
    every = [v for values in latencies.values() for v in values]
    report: dict[str, Any] = {
        "updates": updates,
        "users": users,
        "concurrency": concurrency,
        "seconds": round(wall, 3),
        "updates_per_s": round(updates / wall),
        "p50_ms": round(percentile(every, 50), 3),
        "p95_ms": round(percentile(every, 95), 3),
        "mean_ms": round(statistics.fmean(every), 3),
        "unanswered_logged": logged,
        "by_outcome": {
            kind: {
                "share": round(len(values) / updates, 3),
                "p50_ms": round(percentile(values, 50), 3),
                "p95_ms": round(percentile(values, 95), 3),
            }
            for kind, values in sorted(latencies.items())
        },
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        report["profile"] = out.getvalue()
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.updates, args.users, args.concurrency, args.profile))
    profile = report.pop("profile", None)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['updates']} text updates from {report['users']} users, concurrency "
            f"{report['concurrency']}: {report['updates_per_s']} updates/s; per update p50 "
            f"{report['p50_ms']} ms, p95 {report['p95_ms']} ms "
            f"({report['unanswered_logged']} unanswered logged to SQLite)"
        )
        for kind, figures in report["by_outcome"].items():
            print(f"  {kind:<10} {figures['share']:>6.1%}  p50 {figures['p50_ms']:.3f} ms  "
                  f"p95 {figures['p95_ms']:.3f} ms")
    if profile:
        print(profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
