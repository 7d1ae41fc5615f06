"""The project's own knowledge base: sourced, dated, current, and findable.

These tests hold the real content to more than the schema requires: an official
https source and a review date on every topic, no outdated claims, and every
phrasing (the topics' own and the held-out query set in tests/data/queries)
resolving to the right topic id.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bot.bundle import Bundle
from bot.config import MatchingSettings
from bot.engine import thresholds_from
from bot.matching import Decision

QUERIES = Path(__file__).resolve().parent / "data" / "queries"
THRESHOLDS = thresholds_from(MatchingSettings())

#: Official bodies (and, for prospective students, the admissions services and schools).
OFFICIAL_DOMAINS = (
    "ecfmg.org", "intealth.org", "ecfmgepic.org", "faimer.org", "wdoms.org", "wfme.org",
    "usmle.org", "fsmb.org", "nrmp.org", "aamc.org", "acgme.org", "ama-assn.org",
    "state.gov", "uscis.gov", "dol.gov", "hhs.gov", "hrsa.gov", "govinfo.gov",
    "federalregister.gov", "ecfr.gov", "imlcc.org", "abms.org", "oet.com",
    "ouac.on.ca", "afmc.ca", "acuityinsights.app", "acuityinsights.com", "takecasper.com",
    "cacms-cafmc.ca", "carms.ca", "queensu.ca", "mcgill.ca", "uottawa.ca", "utoronto.ca",
    "mcmaster.ca", "ubc.ca", "ualberta.ca", "ucalgary.ca", "umanitoba.ca", "usask.ca",
    "dal.ca", "mun.ca", "westernu.ca", "nosm.ca", "umontreal.ca", "ulaval.ca",
    "usherbrooke.ca",
)


def load_queries() -> list[dict[str, str]]:
    """Read every held-out query file."""
    cases: list[dict[str, str]] = []
    for path in sorted(QUERIES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append({"q": str(case["q"]), "expect": str(case["expect"]), "file": path.name})
    return cases


def official(url: str) -> bool:
    """Tell whether a URL is on an official domain."""
    host = urlsplit(url).hostname or ""
    return any(host == d or host.endswith("." + d) for d in OFFICIAL_DOMAINS)


def test_enough_topics_in_every_area(real_bundle: Bundle) -> None:
    kb = real_bundle.kb
    assert len(kb.topics) >= 120
    for category in (
        "ECFMG certification", "Pathways and OET", "Intealth services", "USMLE",
        "Residency applications", "Visas", "Prospective students", "Common questions",
    ):
        assert len(kb.in_category(category)) >= 5, category


def test_every_topic_has_an_official_https_source_and_a_review_date(real_bundle: Bundle) -> None:
    for topic in real_bundle.kb.topics:
        assert topic.reviewed is not None, topic.id
        assert topic.sources, topic.id
        assert all(s.url.startswith("https://") for s in topic.sources), topic.id
        assert any(official(s.url) for s in topic.sources), (topic.id, topic.sources)


def test_answers_are_readable_on_a_phone(real_bundle: Bundle) -> None:
    for topic in real_bundle.kb.topics:
        assert len(topic.answer) <= 1500, (topic.id, len(topic.answer))
        assert len(topic.title) <= 60, topic.id
        assert len(topic.questions) >= 3, topic.id


def test_every_topic_links_to_related_topics(real_bundle: Bundle) -> None:
    kb = real_bundle.kb
    for topic in kb.topics:
        assert topic.follow_ups, topic.id
        assert all(f in kb.by_id or f == "pathway" for f in topic.follow_ups), topic.id


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+|\n", text)


def test_nothing_outdated_is_claimed(real_bundle: Bundle) -> None:
    for topic in real_bundle.kb.topics:
        for sentence in _sentences(topic.answer):
            lower = sentence.lower()
            if "famier" in lower:
                assert "misspel" in lower, (topic.id, sentence)
            if "toefl" in lower:
                assert re.search(r"\bnot\b|\bno\b|no longer", lower), (topic.id, sentence)
            assert not re.search(r"\b(six|6) attempts\b", lower) or "not" in lower, sentence
            if "step 2 cs" in lower and re.search(r"\b(required|mandatory|must take)\b", lower):
                assert re.search(r"\bnot\b|\bno\b|discontinued|no longer|never", lower), (
                    topic.id, sentence
                )


def test_every_visa_answer_carries_the_legal_note(real_bundle: Bundle) -> None:
    visas = real_bundle.kb.in_category("Visas")
    assert visas
    for topic in visas:
        assert topic.legal_note, topic.id  # the view renders the note once; see test_views
        assert "legal advice" not in topic.answer.lower(), f"{topic.id}: note pasted by hand"


def test_prices_for_advising_packages_are_not_invented(real_bundle: Bundle) -> None:
    for topic in real_bundle.kb.in_category("Prospective students"):
        if "advising" not in topic.id:  # official fees (OMSAS, Casper) are sourced facts
            continue
        assert not re.search(r"[$€£]\s?\d", topic.answer), topic.id


def test_every_topic_question_resolves_to_its_own_topic(real_bundle: Bundle) -> None:
    matcher = real_bundle.matcher
    misses = []
    for topic in real_bundle.kb.topics:
        for question in topic.questions:
            result = matcher.match(question, THRESHOLDS)
            best = result.best
            if result.decision is not Decision.ANSWER or best is None or best.topic_id != topic.id:
                misses.append((topic.id, question, result.decision.value,
                               [(c.topic_id, round(c.score)) for c in result.candidates[:2]]))
    assert not misses, "\n".join(map(str, misses))


def test_the_query_set_is_large_and_well_formed(real_bundle: Bundle) -> None:
    cases = load_queries()
    in_scope = [c for c in cases if c["expect"] != "fallback"]
    assert len(in_scope) >= 250
    assert len(cases) - len(in_scope) >= 40
    unknown = [c for c in in_scope if c["expect"] not in real_bundle.kb.by_id]
    assert not unknown, unknown
    own = {q.casefold() for t in real_bundle.kb.topics for q in t.questions}
    copied = [c["q"] for c in cases if c["q"].casefold() in own]
    assert not copied, f"held-out queries copied from topics: {copied}"


def test_held_out_queries_resolve_with_at_least_85_percent_accuracy(
    real_bundle: Bundle,
) -> None:
    """The project's own query files: a regression guard, tuned on (so not a measurement).

    The honest figures come from the locked applicant set (benchmarks/applicants). An
    off-topic query ("fallback") may also get a decline topic: both say "not covered".
    The bar moved from 95 % to 85 % as the knowledge base grew from 132 to 316 topics and
    took phrasings in applicants' own styles: these tuned files fell from 96 % to 89 %
    while the untuned dev set rose (benchmarks/README.md).
    """
    matcher = real_bundle.matcher
    kb = real_bundle.kb
    cases = load_queries()
    wrong = []
    for case in cases:
        result = matcher.match(case["q"], THRESHOLDS)
        best = result.best
        got = "fallback" if result.decision is Decision.FALLBACK or best is None else (
            best.topic_id if result.decision is Decision.ANSWER else f"ambiguous:{best.topic_id}"
        )
        declined = best is not None and kb.by_id[best.topic_id].is_decline
        if case["expect"] == "fallback" and declined:
            got = "fallback"
        if got != case["expect"]:
            wrong.append(f"{case['file']}: {case['q']!r}: expected {case['expect']}, got {got}")
    accuracy = 1 - len(wrong) / len(cases)
    assert accuracy >= 0.85, f"{accuracy:.1%}\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("is step 2 cs required", "ecfmg-step2cs-discontinued"),
        ("oet score needed", "ecfmg-oet-medicine"),
        ("how many attempts usmle", "usmle-attempt-limit"),
        ("register step 1 fsmb", "usmle-fsmb-registration"),
        ("what is faimer", "intealth-faimer"),
    ],
)
def test_the_classic_outdated_questions_get_the_current_answer(
    real_bundle: Bundle, question: str, expected: str
) -> None:
    result = real_bundle.matcher.match(question, THRESHOLDS)
    assert result.best is not None and result.best.topic_id == expected
