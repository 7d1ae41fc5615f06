"""Regression guards for corrected facts: each case asks a question as a user would.

Every file in ``tests/data/facts/`` holds cases ``{q, topic, must, must_not}``: the
question must reach ``topic`` (answered, or first in "did you mean"), and that answer
must contain every phrase of ``must`` and none of ``must_not`` (the outdated wording),
case-insensitively, as the user reads it (dates named from the calendar rendered).
Cases are data, so staff can add a guard whenever they correct a fact.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.bundle import Bundle
from bot.config import MatchingSettings
from bot.engine import thresholds_from
from bot.matching import Decision

FACTS = Path(__file__).resolve().parent / "data" / "facts"
THRESHOLDS = thresholds_from(MatchingSettings())


def load_cases() -> list[dict[str, Any]]:
    """Read every guard file, one case per entry."""
    cases: list[dict[str, Any]] = []
    for path in sorted(FACTS.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            case["file"] = path.name
            cases.append(case)
    return cases


CASES = load_cases()


def test_there_are_guards_for_every_area() -> None:
    assert len(CASES) >= 30
    assert len({c["file"] for c in CASES}) >= 5


@pytest.mark.parametrize("case", CASES, ids=[f"{c['file']}:{c['q'][:40]}" for c in CASES])
def test_a_corrected_fact_is_answered_and_the_old_one_is_gone(
    real_bundle: Bundle, case: dict[str, Any]
) -> None:
    result = real_bundle.matcher.match(case["q"], THRESHOLDS)
    best = result.best
    # Answered, or offered first in "did you mean": either way the user reaches this answer.
    assert result.decision is not Decision.FALLBACK and best is not None, case["q"]
    assert best.topic_id == case["topic"], (case["q"], best.topic_id)
    # As the user reads it: dates named from the calendar are rendered, as of today.
    topic = real_bundle.kb.by_id[case["topic"]]
    answer = real_bundle.calendar.render(topic.answer, dt.date.today()).casefold()
    for phrase in case.get("must", []):
        assert str(phrase).casefold() in answer, (case["topic"], phrase)
    for phrase in case.get("must_not", []):
        assert str(phrase).casefold() not in answer, (case["topic"], phrase)
