"""The worst messages we can construct, against the real knowledge base: matching cost.

Each input fits in one Telegram message (4,096 characters). Prints, per input, the median
and worst of several runs in milliseconds, and the worst overall against the target
(20 ms), beside the median cost of ordinary questions measured in the same run.

    .venv/bin/python -m benchmarks.hostile [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import time
import unicodedata
from pathlib import Path

from bot.bundle import load_bundle
from bot.config import MatchingSettings
from bot.engine import INLINE_MAX_CHARS, thresholds_from

KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge"
LIMIT = 4096
TARGET_MS = 20.0
ORDINARY = [
    "is step 2 cs still required",
    "how many attempts for step 1",
    "what oet score do i need for ecfmg",
    "when is the nrmp rank order list deadline",
    "can i do residency on h1b",
]


def expanding_characters(limit: int = 40) -> list[str]:
    """Return the characters whose NFKC form is longest (up to eighteen letters)."""
    found = []
    for code in range(0x110000):
        char = chr(code)
        grown = len(unicodedata.normalize("NFKC", char))
        if grown >= 3:
            found.append((grown, char))
    found.sort(reverse=True)
    return [c for _, c in found[:limit]]


def hostile_inputs() -> dict[str, str]:
    """Return named messages built to cost the most."""
    rng = random.Random(7)
    inputs: dict[str, str] = {}
    for char in expanding_characters(8):
        inputs[f"U+{ord(char):04X} x {LIMIT}"] = char * LIMIT
    inputs["one 4096-letter word"] = "a" * LIMIT
    inputs["random letters, one word"] = "".join(rng.choices(string.ascii_lowercase, k=LIMIT))
    for size in (12, 30, 60, 120):
        words = [
            "".join(rng.choices(string.ascii_lowercase, k=size)) for _ in range(LIMIT // size)
        ]
        inputs[f"random {size}-letter words"] = " ".join(words)[:LIMIT]
    near = ["certificaton", "residancy", "applicaiton", "requirments", "examinaton"]
    inputs["near-miss typos of long words"] = " ".join(
        rng.choice(near) + "".join(rng.choices(string.ascii_lowercase, k=3)) for _ in range(400)
    )[:LIMIT]
    inputs["expanding chars between words"] = ("ecfmg \ufdfa " * 1000)[:LIMIT]
    inputs["emoji"] = "\U0001f600" * (LIMIT // 2)
    inputs["combining marks"] = ("e" + "\u0301" * 30 + " ") * (LIMIT // 32)
    return inputs


def timed(match: object, query: str, repeat: int) -> list[float]:
    """Return the times (ms) of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        match(query)  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bundle, problems = load_bundle(KNOWLEDGE)
    if bundle is None:
        raise SystemExit("\n".join(str(p) for p in problems))
    thresholds = thresholds_from(MatchingSettings())

    def match(query: str) -> object:
        return bundle.matcher.match(query, thresholds)

    for query in ORDINARY:  # warm up
        match(query)
    ordinary = statistics.median(t for q in ORDINARY for t in timed(match, q, args.repeat))
    rows = []
    for name, query in hostile_inputs().items():
        times = timed(match, query, args.repeat)
        rows.append({"input": name, "chars": len(query), "p50_ms": statistics.median(times),
                     "max_ms": max(times)})
    worst = max(rows, key=lambda r: r["max_ms"])
    # What the engine understands on the event loop: short and already in NFKC form.
    inline = [
        {"input": name, "max_ms": max(timed(match, cut, args.repeat))}
        for name, query in hostile_inputs().items()
        for cut in [query[:INLINE_MAX_CHARS]]
        if unicodedata.is_normalized("NFKC", cut)
    ]
    worst_inline = max(inline, key=lambda r: r["max_ms"])
    summary = {"ordinary_p50_ms": ordinary, "worst": worst, "target_ms": TARGET_MS,
               "met": worst["max_ms"] <= TARGET_MS, "worst_on_event_loop": worst_inline,
               "rows": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{'input':34} {'chars':>6} {'p50 ms':>8} {'max ms':>8}")
    for row in rows:
        print(f"{row['input']:34} {row['chars']:6} {row['p50_ms']:8.2f} {row['max_ms']:8.2f}")
    print(f"\nordinary questions p50: {ordinary:.2f} ms")
    print(f"worst: {worst['input']} at {worst['max_ms']:.2f} ms "
          f"({worst['max_ms'] / ordinary:.1f}x an ordinary question); "
          f"target <= {TARGET_MS:.0f} ms: {'met' if summary['met'] else 'MISSED'}")
    print(f"worst of those cut to {INLINE_MAX_CHARS} characters (understood on the event "
          f"loop when already in NFKC form): {worst_inline['input']} at "
          f"{worst_inline['max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
