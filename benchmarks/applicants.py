"""How the bot answers the applicant question sets in ``benchmarks/applicants/``.

In-scope questions are scored against labels (``labels_<set>.yaml``: in-scope index ->
acceptable topic ids, best first; empty or missing = no topic answers it). Off-topic
questions should be declined. The locked set is checked against ``LOCKED.sha256`` first.

    .venv/bin/python -m benchmarks.applicants [--set dev|locked] [--json] [--errors N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bot.bundle import Bundle, load_bundle
from bot.config import MatchingSettings
from bot.engine import answer_record

ROOT = Path(__file__).resolve().parent.parent
SETS = Path(__file__).resolve().parent / "applicants"
KNOWLEDGE = ROOT / "knowledge"
SHOWN = ("answer", "ambiguous")  # any other status counts as declined


def load_list(path: Path) -> list[dict[str, Any]]:
    """Return the entries of one question file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list) or not all(isinstance(e, dict) and "q" in e for e in data):
        raise ValueError(f"{path}: expected a list of mappings with a 'q' key")
    return data


def load_labels(path: Path, size: int) -> dict[int, list[str]]:
    """Return index -> acceptable topic ids; a bad index or value is an error."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of index -> list of topic ids")
    labels: dict[int, list[str]] = {}
    for key, ids in data.items():
        if not isinstance(key, int) or not 0 <= key < size:
            raise ValueError(f"{path}: index {key!r} is not an in-scope entry (0..{size - 1})")
        if not isinstance(ids or [], list) or not all(isinstance(i, str) for i in ids or []):
            raise ValueError(f"{path}: entry {key}: expected a list of topic ids")
        labels[key] = list(ids or [])
    return labels


def locked_changes(directory: Path) -> list[str]:
    """Return the locked files whose sha256 differs from LOCKED.sha256 (or why it can't tell)."""
    sums = directory / "LOCKED.sha256"
    if not sums.is_file():
        return [f"{sums} is missing"]
    changed = []
    for line in sums.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = directory / Path(name.strip().lstrip("*")).name
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != digest.lower():
            changed.append(f"{path.name}: expected {digest[:12]}…, got {actual[:12]}…")
    return changed


def pct(part: int, whole: int) -> float | None:
    """Return part/whole in percent, rounded, or None for an empty group."""
    return round(100.0 * part / whole, 1) if whole else None


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def in_scope_outcome(record: dict[str, Any], right: list[str]) -> dict[str, bool]:
    """Classify one labelled in-scope answer."""
    status = record["status"]
    ranked = [c["topic"] for c in record.get("candidates", [])]
    first = record.get("topic") or (ranked[0] if ranked else None)
    return {
        "answered_right": status == "answer" and record.get("topic") in right,
        "first_right": status in SHOWN and first in right,
        "top3_right": any(t in right for t in ranked[:3]),
        "wrong_answer": status == "answer" and record.get("topic") not in right,
        "declined": status not in SHOWN,
    }


def summarise(rows: Iterable[dict[str, bool]]) -> dict[str, Any]:
    """Return n and the percentage of each outcome over rows."""
    rows = list(rows)
    keys = ("answered_right", "first_right", "top3_right", "wrong_answer", "declined")
    return {"n": len(rows), **{k: pct(sum(r[k] for r in rows), len(rows)) for k in keys}}


def evaluate(
    bundle: Bundle,
    settings: MatchingSettings,
    in_scope: list[dict[str, Any]],
    off_topic: list[dict[str, Any]],
    labels: dict[int, list[str]],
) -> dict[str, Any]:
    """Ask every question and return the metrics (and the misses, as ``errors``)."""
    times: list[float] = []

    def ask(question: str) -> dict[str, Any]:
        start = time.perf_counter()
        record = answer_record(bundle, settings, question)
        times.append(1000 * (time.perf_counter() - start))
        return record

    labelled: list[tuple[dict[str, Any], dict[str, bool]]] = []
    unlabelled_declined, unlabelled_n = 0, 0
    errors: list[dict[str, Any]] = []
    for index, entry in enumerate(in_scope):
        record, right = ask(entry["q"]), labels.get(index, [])
        got = f"{record['status']} {record.get('topic') or ''}".strip()
        if not right:
            unlabelled_n += 1
            unlabelled_declined += record["status"] not in SHOWN
            if record["status"] in SHOWN:
                rank = 0 if record["status"] == "answer" else 1
                errors.append({"q": entry["q"], "expected": "decline", "got": got, "rank": rank})
            continue
        outcome = in_scope_outcome(record, right)
        labelled.append((entry, outcome))
        if not outcome["answered_right"]:
            rank = 0 if outcome["wrong_answer"] else 2
            errors.append({"q": entry["q"], "expected": right, "got": got, "rank": rank})
    groups: dict[str, dict[str, list[dict[str, bool]]]] = {"area": {}, "lang": {}}
    for entry, outcome in labelled:
        for field, by_value in groups.items():
            by_value.setdefault(str(entry.get(field, "?")), []).append(outcome)
    off: dict[str, list[str]] = defaultdict(list)
    for entry in off_topic:
        record = ask(entry["q"])
        off[str(entry.get("kind", "?"))].append(record["status"])
        if record["status"] in SHOWN:
            got = f"{record['status']} {record.get('topic') or ''}".strip()
            rank = 0 if record["status"] == "answer" else 1
            errors.append({"q": entry["q"], "expected": "decline", "got": got, "rank": rank})

    def off_summary(statuses: list[str]) -> dict[str, Any]:
        declined = sum(s not in SHOWN for s in statuses)
        answered = sum(s == "answer" for s in statuses)
        return {"n": len(statuses), "declined": pct(declined, len(statuses)),
                "answered": pct(answered, len(statuses))}

    return {
        "in_scope": {
            "overall": summarise(o for _, o in labelled),
            **{f"by_{f}": {k: summarise(v) for k, v in sorted(g.items())}
               for f, g in groups.items()},
        },
        "unlabelled": {"n": unlabelled_n, "declined": pct(unlabelled_declined, unlabelled_n)},
        "off_topic": {
            "overall": off_summary([s for statuses in off.values() for s in statuses]),
            "by_kind": {k: off_summary(v) for k, v in sorted(off.items())},
        },
        "timing_ms": {"p50": round(percentile(times, 0.5), 2),
                      "p95": round(percentile(times, 0.95), 2)},
        "errors": sorted(errors, key=lambda e: e["rank"]),
    }


def show(value: float | None) -> str:
    """Format a percentage for the table."""
    return "  n/a" if value is None else f"{value:5.1f}"


def print_report(name: str, report: dict[str, Any]) -> None:
    """Print the metrics as plain-text tables."""
    print(f"Applicant questions, set {name!r}\n")
    print(f"{'in-scope':<18}{'n':>5}  right  first   top3  wrong  declined")
    scope = report["in_scope"]
    rows = [("overall", scope["overall"])]
    for field in ("area", "lang"):
        rows += [(f"{field}={k}", v) for k, v in scope[f"by_{field}"].items()]
    for label, m in rows:
        cols = ("answered_right", "first_right", "top3_right", "wrong_answer", "declined")
        print(f"{label:<18}{m['n']:>5}  " + "  ".join(show(m[c]) for c in cols))
    un = report["unlabelled"]
    print(f"\nunlabelled in-scope (no topic answers it): n={un['n']}, "
          f"declined {show(un['declined']).strip()} %")
    print(f"\n{'off-topic':<18}{'n':>5}  declined  answered (wrong)")
    off = report["off_topic"]
    for label, m in [("overall", off["overall"]), *off["by_kind"].items()]:
        print(f"{label:<18}{m['n']:>5}  {show(m['declined'])}     {show(m['answered'])}")
    t = report["timing_ms"]
    print(f"\ntiming: p50 {t['p50']:.2f} ms, p95 {t['p95']:.2f} ms per question")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 2 without labels, 3 if the locked set changed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("dev", "locked"), default="dev", dest="name")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--errors", type=int, default=0, metavar="N", help="show N misses")
    parser.add_argument("--show-locked-errors", action="store_true")
    parser.add_argument("--kb", type=Path, default=KNOWLEDGE, help="knowledge directory")
    parser.add_argument("--dir", type=Path, default=SETS, help="question sets directory")
    args = parser.parse_args(argv)
    show_errors = args.errors > 0
    if args.name == "locked":
        changed = locked_changes(args.dir)
        if changed:
            print("Refusing to run: the locked set does not match LOCKED.sha256:\n  "
                  + "\n  ".join(changed), file=sys.stderr)
            return 3
        print("WARNING: locked set. Its examples must not be used for tuning.", file=sys.stderr)
        show_errors = show_errors and args.show_locked_errors
        if args.errors and not args.show_locked_errors:
            print("(examples hidden; add --show-locked-errors to see them)", file=sys.stderr)
    labels_path = args.dir / f"labels_{args.name}.yaml"
    if not labels_path.is_file():
        print(f"No labels: {labels_path} does not exist (format: index -> [topic ids]).",
              file=sys.stderr)
        return 2
    in_scope = load_list(args.dir / f"{args.name}_in_scope.yaml")
    off_topic = load_list(args.dir / f"{args.name}_off_topic.yaml")
    labels = load_labels(labels_path, len(in_scope))
    bundle, problems = load_bundle(args.kb)
    if bundle is None:
        print("The knowledge does not load:\n" + "\n".join(map(str, problems)), file=sys.stderr)
        return 1
    unknown = sorted({t for ids in labels.values() for t in ids} - set(bundle.kb.by_id))
    if unknown:
        print(f"WARNING: labels name unknown topics: {', '.join(unknown)}", file=sys.stderr)
    report = evaluate(bundle, MatchingSettings(), in_scope, off_topic, labels)
    errors = report.pop("errors")[: args.errors] if show_errors else []
    if args.json:
        print(json.dumps({"set": args.name, **report, **({"errors": errors} if errors else {})},
                         ensure_ascii=False, indent=2))
        return 0
    print_report(args.name, report)
    if errors:
        print(f"\nmisses (up to {args.errors}; wrong answers first):")
        for e in errors:
            print(f"- {e['q']}\n    expected {e['expected']}, got {e['got']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
