"""Tests of the matcher on a small, real knowledge base: ids and decisions, never copy."""

from __future__ import annotations

import random
import string

import pytest

from bot import matching
from bot.knowledge import KnowledgeBase, SynonymGroup, Topic
from bot.matching import (
    MAX_QUERY_CHARS,
    MAX_QUERY_TOKENS,
    MAX_WORD_CHARS,
    Candidate,
    Decision,
    Matcher,
    MatchResult,
    Thresholds,
    decide,
    normalize,
)

THRESHOLDS = Thresholds(answer=60.0, suggest=40.0, margin=8.0)


def _topic(topic_id: str, *questions: str, keywords: tuple[str, ...] = ()) -> Topic:
    return Topic(
        id=topic_id,
        questions=questions,
        answer=f"Answer for {topic_id}.",
        title=questions[0],
        keywords=keywords,
    )


TOPICS = (
    _topic(
        "ecfmg-certification",
        "How do I get ECFMG certification?",
        "What are the requirements for ECFMG certification?",
        keywords=("certificate",),
    ),
    _topic("usmle-step1", "What is USMLE Step 1?", "How is Step 1 scored?"),
    _topic("usmle-step2ck", "What is USMLE Step 2 CK?", "When should I take Step 2 CK?"),
    _topic("j1-visa", "How do I get a J-1 visa for residency?", "Who sponsors the J-1 visa?"),
    _topic("h1b-visa", "Can I do residency on an H-1B visa?"),
    _topic(
        "letters",
        "How many letters of recommendation do I need?",
        "Who should write my letters of recommendation?",
    ),
    _topic("personal-statement", "How do I write a personal statement?"),
    _topic("match-day", "When is Match Day?", "What happens on Match Day?"),
    _topic(
        "usce", "How do I get US clinical experience?", "What counts as US clinical experience?"
    ),
    _topic("img-definition", "Who counts as an international medical graduate?"),
    # Two deliberately close topics, for the ambiguity test.
    _topic("eras-fees", "How much does ERAS cost to apply?"),
    _topic("nrmp-fees", "How much does NRMP cost to register?"),
)

SYNONYMS = (
    SynonymGroup("j 1 visa", ("j1", "j 1", "j1 visa", "exchange visitor visa")),
    SynonymGroup("h 1b visa", ("h1b", "h 1b", "h1b visa")),
    SynonymGroup("step 2 ck", ("ck", "step2 ck", "step 2ck")),
    SynonymGroup("step 1", ("s1", "step1", "step one")),
    SynonymGroup("letter of recommendation", ("lor", "lors", "letters of recommendation")),
    SynonymGroup("personal statement", ("ps",)),
    SynonymGroup("us clinical experience", ("usce",)),
    SynonymGroup("international medical graduate", ("img", "imgs", "fmg")),
    SynonymGroup("ecfmg", ("efmg",)),
    SynonymGroup("ecfmg certification", ("ecfmg cert", "ecfmg certificate")),
    SynonymGroup("residency", ("residancy", "recidency")),
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.build(KnowledgeBase.from_topics(TOPICS, SYNONYMS))


def _best(matcher: Matcher, query: str) -> str | None:
    result = matcher.match(query, THRESHOLDS)
    return result.best.topic_id if result.best else None


# -- normalize -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  ECFMG   Certification?! ", "ecfmg certification"),
        ("Résumé für Ärzte", "resume fur arzte"),
        ("J-1 visa", "j 1 visa"),
        ("What's the USMLE?", "whats the usmle"),
        ("ｆｕｌｌ　ｗｉｄｔｈ", "full width"),  # NFKC folds full-width letters and spaces
        ("Step 1 🙂👍 pass/fail", "step 1 pass fail"),
        ("STRASSE Straße", "strasse strasse"),
        ("🙂🙂", ""),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    text = normalize("Crème brûlée — the ECFMG's “OET” test!")
    assert normalize(text) == text


# -- finding the right topic -----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How do I get ECFMG certification?", "ecfmg-certification"),
        ("ecfmg certifcation requirments", "ecfmg-certification"),  # typos
        ("how do I get my efmg cert", "ecfmg-certification"),  # misspelt abbreviation
        ("when to take ck", "usmle-step2ck"),  # abbreviation
        ("how is s1 scored", "usmle-step1"),
        ("j1 sponsor", "j1-visa"),  # synonym
        ("who sponsors exchange visitor visa", "j1-visa"),
        ("h1b residency", "h1b-visa"),
        ("how many lors do i need", "letters"),
        ("tips to write my ps", "personal-statement"),
        ("how to get usce", "usce"),
        ("am I an IMG", "img-definition"),
        ("certification ECFMG get how", "ecfmg-certification"),  # word order
        ("day of the match what happens", "match-day"),
        ("WHEN IS MATCH DAY???", "match-day"),
        ("j-1 visa for recidency", "j1-visa"),
    ],
)
def test_finds_the_topic(matcher: Matcher, query: str, expected: str) -> None:
    assert _best(matcher, query) == expected


def test_exact_question_is_answered_directly(matcher: Matcher) -> None:
    result = matcher.match("When is Match Day?", THRESHOLDS)
    assert result.decision is Decision.ANSWER
    assert result.best is not None and result.best.topic_id == "match-day"


def test_every_question_variant_is_indexed(matcher: Matcher) -> None:
    for topic in TOPICS:
        for question in topic.questions:
            assert _best(matcher, question) == topic.id, question


def test_keywords_are_indexed(matcher: Matcher) -> None:
    assert _best(matcher, "certificate") == "ecfmg-certification"


def test_synonyms_apply_to_the_indexed_texts_too() -> None:
    topics = (_topic("j1", "Who sponsors the J1?"), _topic("other", "What is Match Day?"))
    kb = KnowledgeBase.from_topics(topics, SYNONYMS)
    assert _best(Matcher.build(kb), "exchange visitor visa sponsor") == "j1"


# -- decisions -------------------------------------------------------------------------


def test_two_close_topics_are_ambiguous_and_both_offered(matcher: Matcher) -> None:
    result = matcher.match("how much does it cost", THRESHOLDS)
    assert result.decision is Decision.AMBIGUOUS
    offered = {c.topic_id for c in result.candidates[: THRESHOLDS.max_suggestions]}
    assert {"eras-fees", "nrmp-fees"} <= offered


@pytest.mark.parametrize(
    "query",
    [
        "what is the best pizza in town",
        "will it rain tomorrow in paris",
        "asdfgh qwerty zxcvb",
        "lkjhg",
        "1234567",
    ],
)
def test_off_topic_and_gibberish_fall_back(matcher: Matcher, query: str) -> None:
    assert matcher.match(query, THRESHOLDS).decision is Decision.FALLBACK


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "🙂🙂🙂", "?!...", "👍"])
def test_empty_input_falls_back_without_candidates(matcher: Matcher, query: str) -> None:
    result = matcher.match(query, THRESHOLDS)
    assert result.decision is Decision.FALLBACK
    assert result.candidates == ()
    assert result.best is None


def test_very_long_input_is_answered_and_junk_falls_back(matcher: Matcher) -> None:
    query = ("how do I get ecfmg certification " * 400)[:10_000]
    result = matcher.match(query, THRESHOLDS)
    assert result.best is not None and result.best.topic_id == "ecfmg-certification"
    junk = "x" * 10_000
    assert matcher.match(junk, THRESHOLDS).decision is Decision.FALLBACK


#: Messages within Telegram's 4,096 characters that once cost seconds to minutes each:
#: characters that expand under NFKC (one "㍿" becomes four letters, one "ﬃ" three), and
#: endless words that typo correction searched at edit distance two.
HOSTILE = [
    "\u337f" * 4096,
    "\u216b" * 4096,
    "\ufb03" * 4096,
    "\ufdfa" * 4096,  # one character, eighteen after NFKC
    "a" * 4096,
    " ".join(["certificaton" + "x" * 300] * 13),
    " ".join("".join(random.Random(seed).choices(string.ascii_lowercase, k=60))
             for seed in range(64)),
]


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: f"{q[:3]!r}x{len(q)}")
def test_the_work_of_one_message_is_bounded_whatever_it_holds(
    matcher: Matcher, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    words, _stems = matcher.analyse(query)
    assert len(words) <= MAX_QUERY_TOKENS
    assert all(len(w) <= MAX_WORD_CHARS for w in words)
    assert len(" ".join(words)) <= MAX_QUERY_CHARS
    # Typo correction is the costly part: count the candidate words it compares.
    compared = 0
    distance = matching.OSA.distance

    def counting(a: str, b: str) -> int:
        nonlocal compared
        compared += 1
        return distance(a, b)

    monkeypatch.setattr(matching.OSA, "distance", counting)
    result = matcher.match(query, THRESHOLDS)
    assert result.decision is not Decision.ANSWER
    assert compared <= 5_000, compared


def test_a_typo_in_a_long_word_is_still_corrected(matcher: Matcher) -> None:
    result = matcher.match("requirments for ecfmg certificaton", THRESHOLDS)
    assert result.best is not None and result.best.topic_id == "ecfmg-certification"


@pytest.mark.parametrize(
    "query",
    ["step 1", "visa", "how do i", "the the the", "ecfmg ecfmg ecfmg ecfmg", "match"],
)
def test_scores_in_range_and_one_candidate_per_topic(matcher: Matcher, query: str) -> None:
    ranked = matcher.rank(query, limit=len(TOPICS))
    ids = [c.topic_id for c in ranked]
    assert len(ids) == len(set(ids))
    assert all(0.0 <= c.score <= 100.0 for c in ranked)
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_limit_is_respected(matcher: Matcher) -> None:
    assert len(matcher.rank("visa residency step", limit=2)) <= 2
    assert matcher.rank("visa", limit=0) == []
    assert len(matcher.match("visa residency step", THRESHOLDS, limit=1).candidates) <= 1


def test_empty_knowledge_base_falls_back() -> None:
    empty = Matcher.build(KnowledgeBase.from_topics(()))
    assert empty.match("ecfmg", THRESHOLDS).decision is Decision.FALLBACK


def test_decide_rule() -> None:
    def cands(*scores: float) -> list[Candidate]:
        return [Candidate(f"t{i}", f"T{i}", s) for i, s in enumerate(scores)]

    assert decide(cands(), THRESHOLDS) is Decision.FALLBACK
    assert decide(cands(90.0), THRESHOLDS) is Decision.ANSWER
    assert decide(cands(90.0, 70.0), THRESHOLDS) is Decision.ANSWER  # clearly ahead
    assert decide(cands(70.0, 65.0), THRESHOLDS) is Decision.AMBIGUOUS  # too close
    assert decide(cands(62.0, 30.0), THRESHOLDS) is Decision.ANSWER  # second far below
    assert decide(cands(50.0, 20.0), THRESHOLDS) is Decision.AMBIGUOUS
    assert decide(cands(39.0), THRESHOLDS) is Decision.FALLBACK


def test_match_result_best() -> None:
    assert MatchResult(Decision.FALLBACK, ()).best is None
    first = Candidate("a", "A", 80.0)
    assert MatchResult(Decision.ANSWER, (first, Candidate("b", "B", 10.0))).best == first
