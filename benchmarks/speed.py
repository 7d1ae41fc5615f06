"""Measure the matcher's speed and memory on synthetic knowledge bases of growing size.

Run from the repository root::

    .venv/bin/python -m benchmarks.speed            # 100, 1,000 and 10,000 topics + load
    .venv/bin/python -m benchmarks.speed --full     # also 100,000 topics (about a minute)

Each size runs in a fresh process, so the resident memory is its own. Topics are
generated from a Zipf-distributed vocabulary of invented words (a few common
words, a long tail of rare ones), with 2-5 phrasings each and function words in
between, like real FAQ questions; queries are perturbed phrasings (words dropped,
shuffled, one typo) and invented off-topic messages. Start-up time is the real
loader (``bot.knowledge.load_knowledge``) reading a directory of YAML files from
disk, plus building the index.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bot.knowledge import KnowledgeBase, Topic
from bot.matching import Matcher, Thresholds

SEED = 20240501
_FUNCTION_TEXT = (
    "how do i what is the a can my for to of in when should does who where which "
    "need get after before with about if it be an on"
)
FUNCTION_WORDS = _FUNCTION_TEXT.split()
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def _vocabulary(size: int, rng: random.Random) -> list[str]:
    """Return ``size`` distinct invented words of 2-4 syllables."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class _Zipf:
    """Draw words with probability proportional to 1 / rank."""

    def __init__(self, words: Sequence[str], rng: random.Random) -> None:
        self.words = words
        self.cumulative = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))
        self.rng = rng

    def draw(self) -> str:
        """Return one word."""
        x = self.rng.random() * self.cumulative[-1]
        return self.words[bisect.bisect_left(self.cumulative, x)]


def synthetic_topics(n: int, seed: int = SEED) -> list[Topic]:
    """Return ``n`` generated topics with realistic word distributions."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(max(2000, min(60000, n * 3)), rng)
    zipf = _Zipf(vocabulary, rng)
    topics = []
    for i in range(n):
        subject = [zipf.draw() for _ in range(rng.randint(2, 4))]
        questions = []
        for _ in range(rng.randint(2, 5)):
            words = rng.sample(subject, k=rng.randint(1, len(subject)))
            words += [zipf.draw() for _ in range(rng.randint(0, 3))]
            words += rng.sample(FUNCTION_WORDS, k=rng.randint(2, 5))
            rng.shuffle(words)
            questions.append(" ".join(words).capitalize() + "?")
        answer = " ".join(zipf.draw() for _ in range(rng.randint(15, 60))).capitalize() + "."
        topics.append(
            Topic(
                id=f"t{i:06d}",
                questions=tuple(questions),
                answer=answer,
                title=questions[0],
                keywords=tuple(subject[:2]),
            )
        )
    return topics


def synthetic_queries(topics: Sequence[Topic], count: int, seed: int = SEED) -> list[str]:
    """Return perturbed phrasings of random topics plus invented off-topic messages."""
    rng = random.Random(seed + 1)
    queries = []
    for k in range(count):
        if k % 5 == 4:
            queries.append(" ".join(rng.choice(SYLLABLES) * 3 for _ in range(rng.randint(2, 8))))
            continue
        words = rng.choice(rng.choice(topics).questions).rstrip("?").split()
        rng.shuffle(words)
        words = words[: max(1, len(words) - rng.randint(0, 2))]
        target = rng.randrange(len(words))
        word = words[target]
        if len(word) > 4:
            j = rng.randrange(1, len(word) - 1)
            words[target] = word[:j] + word[j + 1 :]  # one deleted letter
        queries.append(" ".join(words))
    return queries


def _rss_mb() -> float:
    """Return the resident memory of this process in MiB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _percentile(values: Sequence[float], q: float) -> float:
    """Return the q-quantile (0..1) of values by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure_size(n: int, queries: int = 1000) -> dict[str, float]:
    """Return build time, p50/p95 per question and memory for ``n`` synthetic topics."""
    topics = synthetic_topics(n)
    kb = KnowledgeBase.from_topics(topics)
    gc.collect()
    rss_before = _rss_mb()
    start = time.perf_counter()
    lexical = Matcher.build(kb, learned=False)
    build = time.perf_counter() - start
    start = time.perf_counter()
    matcher = lexical.with_learned()  # what the bot adds in the background after start
    learned_build = time.perf_counter() - start
    del lexical
    gc.collect()
    rss_after = _rss_mb()
    thresholds = Thresholds()
    texts = synthetic_queries(topics, queries)
    for text in texts[:50]:  # warm up caches and the allocator
        matcher.match(text, thresholds)
    times = []
    for text in texts:
        t0 = time.perf_counter()
        matcher.match(text, thresholds)
        times.append((time.perf_counter() - t0) * 1000)
    long_query = " ".join(texts[:2000])[:10_000]
    t0 = time.perf_counter()
    matcher.match(long_query, thresholds)
    long_ms = (time.perf_counter() - t0) * 1000
    return {
        "topics": n,
        "phrasings": sum(len(t.questions) for t in topics),
        "build_s": build,
        "learned_s": learned_build,
        "learned_mb": matcher.learned_bytes / 2**20,
        "p50_ms": _percentile(times, 0.5),
        "p95_ms": _percentile(times, 0.95),
        "max_ms": max(times),
        "long_query_ms": long_ms,
        "rss_mb": rss_after,
        "index_mb": rss_after - rss_before,
    }


def _write_knowledge(directory: Path, topics: Sequence[Topic], per_file: int = 100) -> None:
    """Write topics as knowledge YAML files (the product's schema) into a directory."""
    import yaml  # only the start-up measurement writes YAML

    for number, start in enumerate(range(0, len(topics), per_file)):
        chunk = topics[start : start + per_file]
        data = {
            "version": 1,
            "topics": [
                {
                    "id": t.id.replace("t", "topic-"),
                    "questions": list(t.questions),
                    "answer": t.answer,
                    "keywords": list(t.keywords),
                }
                for t in chunk
            ],
        }
        path = directory / f"area{number:03d}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def measure_startup(n: int = 1000) -> dict[str, float]:
    """Return the time to load a knowledge directory of ``n`` topics and build the index."""
    from bot.knowledge import load_knowledge

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _write_knowledge(directory, synthetic_topics(n))
        start = time.perf_counter()
        kb, problems = load_knowledge(directory)
        loaded = time.perf_counter()
        if kb is None:
            raise SystemExit(f"the synthetic knowledge did not load: {problems[:3]}")
        Matcher.build(kb)
        built = time.perf_counter()
    return {
        "topics": n,
        "load_s": loaded - start,
        "build_s": built - loaded,
        "startup_s": built - start,
    }


def _in_subprocess(argument: str) -> dict[str, float]:
    """Run one measurement in a fresh interpreter and return its JSON."""
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", "--one", argument],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the speed benchmarks and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also measure 100,000 topics")
    parser.add_argument("--sizes", type=int, nargs="*", help="topic counts to measure")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        if args.one == "startup":
            print(json.dumps(measure_startup()))
        else:
            print(json.dumps(measure_size(int(args.one))))
        return 0
    sizes = args.sizes or ([100, 1000, 10000, 100000] if args.full else [100, 1000, 10000])
    print(
        f"{'topics':>8} {'phrasings':>9} {'build s':>8} {'learn s':>8} {'weights MiB':>11}"
        f" {'p50 ms':>7} {'p95 ms':>7}"
        f" {'max ms':>7} {'10k-char ms':>11} {'RSS MiB':>8} {'index MiB':>9}"
    )
    for n in sizes:
        r = _in_subprocess(str(n))
        print(
            f"{r['topics']:>8,.0f} {r['phrasings']:>9,.0f} {r['build_s']:8.2f}"
            f" {r['learned_s']:8.2f} {r['learned_mb']:11.1f}"
            f" {r['p50_ms']:7.2f} {r['p95_ms']:7.2f} {r['max_ms']:7.2f}"
            f" {r['long_query_ms']:11.2f} {r['rss_mb']:8.0f} {r['index_mb']:9.0f}"
        )
    s = _in_subprocess("startup")
    print(
        f"\nload + index inside a running process at {s['topics']:,.0f} topics (YAML from disk, "
        "the real loader; not spawn to first getUpdates, which benchmarks.live measures): "
        f"{s['startup_s']:.2f} s (load {s['load_s']:.2f} s, index {s['build_s']:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
