"""The learned model: its hand-written query path against scikit-learn's, and what it learns."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from bot.learned import LearnedScorer, vectorizers
from bot.text import normalize

TEXTS = [normalize(t) for t in (
    "How many attempts do I get for USMLE Step 1?", "usmle attempt limit", "4 attempts rule",
    "What OET score does ECFMG need?", "oet medicine score pathway", "oet retake",
    "How do I get a J-1 visa for residency?", "j1 visa ecfmg sponsorship", "ds 2019 form",
    "Cuánto cuesta el Step 1?", "kya mujhe step 3 chahiye", "a", "ab",
)]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 1, 2]
QUERIES = [
    "how many times can i take step 1", "oet scor for pathway", "j1 sponsorship ecfmg visa",
    "a", "ab c", "zzz qqq", "", "step 1 step 1 step 1 attempts",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_hand_written_features_are_scikit_learns(query: str) -> None:
    scorer = LearnedScorer.build(TEXTS, LABELS, 3)
    word, char = vectorizers(len(TEXTS))
    word.fit(TEXTS)
    char.fit(TEXTS)
    expected = sparse.hstack([word.transform([query]), char.transform([query])], format="csr")
    columns, values = scorer.vector(query)
    got = np.zeros(expected.shape[1], dtype=np.float32)
    got[columns] = values
    assert np.allclose(got, expected.toarray().ravel(), atol=1e-5)


def test_every_topic_and_a_shortlist_score_the_same() -> None:
    scorer = LearnedScorer.build(TEXTS, LABELS, 3)
    for query in QUERIES:
        every = scorer.score_all(query)
        assert every is not None
        assert np.allclose(every[[2, 0]], scorer.score(query, [2, 0]), atol=1e-5)


def test_it_learns_which_topic_a_new_phrasing_belongs_to() -> None:
    scorer = LearnedScorer.build(TEXTS, LABELS, 3)
    for query, topic in (("how many times can i take step 1", 0),
                         ("oet scor for pathway", 1), ("j1 sponsorship ecfmg visa", 2)):
        every = scorer.score_all(query)
        assert every is not None and int(np.argmax(every)) == topic
