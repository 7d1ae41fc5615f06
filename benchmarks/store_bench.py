"""Status updates per second through the store, with durable commits.

200 simulated users each record N pathway status changes concurrently (each update is
the progress row, its history row and the user's position, atomic and on disk before
its caller goes on), against a real SQLite file in WAL mode with synchronous=FULL.
Concurrent updates are grouped into shared transactions (group commit); the report
says how many transactions there were. ``--users 1`` gives one transaction per update.
Reports updates/s and the p50/p95/p99 latency of one update as its caller sees it.

    python -m benchmarks.store_bench [--users 200] [--updates 20] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.store import Store


async def run(users: int, updates: int, directory: Path) -> dict[str, float]:
    """Run the benchmark once and return its figures."""
    store = await Store.open(directory / "bench.sqlite3")
    latencies: list[float] = []

    async def one_user(user_id: int) -> None:
        for i in range(updates):
            step = f"step-{i % 16}"
            started = time.perf_counter()
            await store.save_position(user_id, step, [step], (step, "done", "yes"))
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_user(u) for u in range(users)))
        elapsed = time.perf_counter() - started
        commits = store.commits
    finally:
        await store.close()
    latencies.sort()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "updates": float(len(latencies)),
        "commits": float(commits),
        "seconds": elapsed,
        "updates_per_s": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def main() -> None:
    """Parse arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        figures = asyncio.run(run(args.users, args.updates, Path(tmp)))
    print(
        f"store: {int(figures['updates'])} status updates by {args.users} concurrent users in "
        f"{figures['seconds']:.2f} s = {figures['updates_per_s']:.0f} updates/s; latency of one "
        f"update p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms (WAL, synchronous=FULL); "
        f"{int(figures['commits'])} transactions, "
        f"{figures['updates'] / max(figures['commits'], 1):.1f} updates per transaction"
    )


if __name__ == "__main__":
    main()
