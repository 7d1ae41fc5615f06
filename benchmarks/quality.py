"""Measure the matcher's quality on the dev halves of the shared FAQ benchmarks.

Run from the repository root::

    .venv/bin/python -m benchmarks.quality [--benchmarks DIR] [--split dev|test] [--json]

For StackFAQ it prints top-1, R@3 and MRR@5; for each HINT3 set also the AUROC
of the best score for in-scope versus out-of-scope messages, and what the bot
would do at the default thresholds (answer right, answer wrong, offer a choice,
fall back). The test halves are hidden; ``--split test`` is for milestone checks
by whoever holds them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.adapter import DEFAULT_BENCHMARKS, HINT3, STACKFAQ, load_kb, load_queries
from bot.matching import Decision, Matcher, ScoringParams, Thresholds

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """The figures of one benchmark."""

    name: str
    queries: int
    top1: float
    r3: float
    mrr5: float
    p50_ms: float
    p95_ms: float
    oos: int = 0
    auroc: float | None = None
    answered_right: float | None = None
    answered_wrong: float | None = None
    offered_with_gold: float | None = None
    offered_without_gold: float | None = None
    fallback_in_scope: float | None = None
    oos_answered: float | None = None
    oos_offered: float | None = None
    oos_fallback: float | None = None


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Return the probability that a positive outscores a negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    ordered = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2.0  # 1-based ranks i+1 .. j
        rank_sum += mean_rank * sum(label for _, label in ordered[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _percentile(values: Sequence[float], q: float) -> float:
    """Return the q-quantile (0..1) of values by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def evaluate(
    directory: Path,
    thresholds: Thresholds,
    split: str = "dev",
    params: ScoringParams | None = None,
) -> Report:
    """Return the figures of one benchmark directory."""
    matcher = Matcher.build(load_kb(directory), params)
    queries = load_queries(directory, f"queries_{split}.yaml")
    oos = load_queries(directory, f"oos_{split}.yaml")
    times: list[float] = []
    top1 = r3 = mrr = 0.0
    right = wrong = offered_gold = offered_other = fallback = 0
    in_scores: list[float] = []
    for query in queries:
        start = time.perf_counter()
        result = matcher.match(query.text, thresholds, limit=5)
        times.append((time.perf_counter() - start) * 1000)
        ids = [c.topic_id for c in result.candidates]
        top1 += ids[:1] == [query.gold]
        r3 += query.gold in ids[:3]
        mrr += 1.0 / (ids.index(query.gold) + 1) if query.gold in ids else 0.0
        in_scores.append(result.best.score if result.best else 0.0)
        if result.decision is Decision.ANSWER:
            right += ids[0] == query.gold
            wrong += ids[0] != query.gold
        elif result.decision is Decision.AMBIGUOUS:
            offered = ids[: thresholds.max_suggestions]
            offered_gold += query.gold in offered
            offered_other += query.gold not in offered
        else:
            fallback += 1
    n = max(len(queries), 1)
    report = Report(
        name=directory.name,
        queries=len(queries),
        top1=100 * top1 / n,
        r3=100 * r3 / n,
        mrr5=100 * mrr / n,
        p50_ms=_percentile(times, 0.5),
        p95_ms=_percentile(times, 0.95),
    )
    if oos:
        oos_scores: list[float] = []
        answered = offered_oos = fell_back = 0
        for query in oos:
            result = matcher.match(query.text, thresholds, limit=5)
            oos_scores.append(result.best.score if result.best else 0.0)
            answered += result.decision is Decision.ANSWER
            offered_oos += result.decision is Decision.AMBIGUOUS
            fell_back += result.decision is Decision.FALLBACK
        m = len(oos)
        report.oos = m
        report.auroc = auroc(in_scores, oos_scores)
        report.answered_right = 100 * right / n
        report.answered_wrong = 100 * wrong / n
        report.offered_with_gold = 100 * offered_gold / n
        report.offered_without_gold = 100 * offered_other / n
        report.fallback_in_scope = 100 * fallback / n
        report.oos_answered = 100 * answered / m
        report.oos_offered = 100 * offered_oos / m
        report.oos_fallback = 100 * fell_back / m
    return report


def run(benchmarks: Path, thresholds: Thresholds, split: str = "dev") -> list[Report]:
    """Return the reports of every benchmark found under ``benchmarks``."""
    reports = []
    for name in (STACKFAQ, *HINT3):
        directory = benchmarks / name
        if (directory / "kb.yaml").exists():
            reports.append(evaluate(directory, thresholds, split))
        else:
            logger.warning("benchmark %s not found under %s", name, benchmarks)
    return reports


def _fmt(value: float | None, digits: int = 1) -> str:
    """Return a figure for the table, or a dash."""
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quality benchmarks and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=DEFAULT_BENCHMARKS)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.benchmarks.is_dir():
        print(f"no benchmarks at {args.benchmarks}; pass --benchmarks DIR", file=sys.stderr)
        return 2
    thresholds = Thresholds()
    reports = run(args.benchmarks, thresholds, args.split)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
        return 0
    print(
        f"split={args.split}  thresholds: answer={thresholds.answer} "
        f"suggest={thresholds.suggest} margin={thresholds.margin}"
    )
    print(
        f"{'benchmark':20} {'n':>4} {'top1':>6} {'R@3':>6} {'MRR@5':>6} {'AUROC':>6}"
        f" {'p50ms':>6} {'p95ms':>6}"
    )
    for r in reports:
        print(
            f"{r.name:20} {r.queries:>4} {r.top1:6.1f} {r.r3:6.1f} {r.mrr5:6.1f}"
            f" {_fmt(r.auroc, 3):>6} {r.p50_ms:6.2f} {r.p95_ms:6.2f}"
        )
    print("\nat the default thresholds (% of in-scope / % of out-of-scope messages):")
    print(
        f"{'benchmark':20} {'right':>6} {'wrong':>6} {'offer+':>6} {'offer-':>6} {'fallbk':>6}"
        f" | {'oos ans':>7} {'oos off':>7} {'oos fb':>7}"
    )
    for r in reports:
        if r.auroc is None:
            continue
        print(
            f"{r.name:20} {_fmt(r.answered_right):>6} {_fmt(r.answered_wrong):>6}"
            f" {_fmt(r.offered_with_gold):>6} {_fmt(r.offered_without_gold):>6}"
            f" {_fmt(r.fallback_in_scope):>6} | {_fmt(r.oos_answered):>7}"
            f" {_fmt(r.oos_offered):>7} {_fmt(r.oos_fallback):>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
