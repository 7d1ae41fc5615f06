"""The learned signal beside the lexical matcher: a linear text model over TF-IDF features.

scikit-learn does the learning (the maintained library for exactly this): word 1-2-grams
and character 3-4-grams (``char_wb``, which carry typos, morphology and other languages)
of every topic's questions, title and keywords, and a linear SVM, one weight vector per
topic. Only the weights that matter are kept, as a sparse matrix, so memory grows with
what was learned rather than with topics x features.

Bounded at any size: a question is scored against every topic only while the knowledge
base is small enough for that to cost well under a millisecond; above
:data:`FULL_SCORING_TOPICS` only the lexical shortlist is re-scored. Above
:data:`SVM_MAX_TOPICS` (where training one weight vector per topic would take minutes)
each topic's weights are the normalised centroid of its phrasings instead.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

logger = logging.getLogger(__name__)

#: Above this many topics, centroids replace the SVM (training stays in seconds).
SVM_MAX_TOPICS = 600
#: Up to this many topics a question is scored against all of them.
FULL_SCORING_TOPICS = 5000
#: Weights smaller than this are dropped after training (they change no ranking).
PRUNE_BELOW = 0.02
#: Character n-gram vocabulary cap (the most frequent are kept).
MAX_CHAR_FEATURES = 300_000


CHAR_NGRAMS = (3, 4)
_TOKEN = re.compile(r"(?u)\b\w+\b")


def _char_wb_grams(text: str, sizes: tuple[int, int]) -> list[str]:
    """Return the character n-grams of each space-padded word, as ``char_wb`` makes them."""
    grams: list[str] = []
    low, high = sizes
    for word in text.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
            if len(padded) <= n:
                break  # a short word gives one (short) gram, as scikit-learn does
    return grams


@dataclass(frozen=True)
class Vocabulary:
    """One fitted TF-IDF part: its terms' columns (after ``offset``) and their IDF."""

    columns: dict[str, int]
    idf: np.ndarray
    offset: int

    @classmethod
    def of(cls, vectorizer: Any, offset: int) -> Vocabulary:
        """Keep what scoring needs of a fitted ``TfidfVectorizer`` (not the vectorizer)."""
        return cls(dict(vectorizer.vocabulary_), np.asarray(vectorizer.idf_), offset)

    def weigh(self, terms: Sequence[str]) -> list[tuple[int, float]]:
        """Return (column, weight) of the known terms: sublinear TF x IDF, L2-normalised."""
        counts = Counter(t for t in terms if t in self.columns)
        weights = [
            (self.columns[t], (1.0 + math.log(n)) * float(self.idf[self.columns[t]]))
            for t, n in counts.items()
        ]
        norm = math.sqrt(sum(w * w for _, w in weights)) or 1.0
        return [(self.offset + c, w / norm) for c, w in weights]


def vectorizers(n_texts: int) -> tuple[Any, Any]:
    """Return the unfitted word and character TF-IDF vectorizers the model learns with."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    word = TfidfVectorizer(
        analyzer="word", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32,
        token_pattern=_TOKEN.pattern,
    )
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, dtype=np.float32,
        min_df=2 if n_texts > 1000 else 1, max_features=MAX_CHAR_FEATURES,
    )
    return word, char


class LearnedScorer:
    """An immutable linear model: one sparse weight row and a bias per topic."""

    def __init__(
        self,
        word: Vocabulary,
        char: Vocabulary,
        weights: sparse.csr_matrix,
        bias: np.ndarray,
        method: str,
    ) -> None:
        self._word = word
        self._char = char
        self._weights = weights
        # Column-major copy for scoring every topic at once (only where that is done).
        self._columns = weights.tocsc() if weights.shape[0] <= FULL_SCORING_TOPICS else None
        self._bias = bias
        self.method = method
        self.n_topics = weights.shape[0]

    @classmethod
    def build(cls, texts: Sequence[str], labels: Sequence[int], n_topics: int) -> LearnedScorer:
        """Learn from ``texts`` (normalised phrasings) labelled with topic indices."""
        # Imported here: scikit-learn takes a second to import, and the bot starts
        # answering with the lexical matcher before the learned model is trained.
        from scipy import sparse
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.preprocessing import normalize as l2_normalize
        from sklearn.svm import LinearSVC

        word, char = vectorizers(len(texts))
        features = sparse.hstack(
            [word.fit_transform(texts), char.fit_transform(texts)], format="csr"
        )
        y = np.asarray(labels)
        classes = np.unique(y)
        bias = np.zeros(n_topics, dtype=np.float32)
        if len(classes) >= 3 and n_topics <= SVM_MAX_TOPICS:
            model = LinearSVC(C=0.5, tol=1e-2, max_iter=300)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(features, y)
            dense = np.asarray(model.coef_, dtype=np.float32)
            dense[np.abs(dense) < PRUNE_BELOW] = 0.0
            rows = sparse.csr_matrix(dense)
            placed = sparse.lil_matrix((n_topics, features.shape[1]), dtype=np.float32)
            placed[model.classes_] = rows
            weights = placed.tocsr()
            bias[model.classes_] = model.intercept_
            bias[np.setdiff1d(np.arange(n_topics), model.classes_)] = -1.0
            method = "svm"
        else:
            # Centroids: the mean of each topic's normalised phrasings, normalised; the
            # score is a cosine in [0, 1], spread to the SVM's rough [-1, 1] range.
            member = sparse.csr_matrix(
                (np.ones(len(y), dtype=np.float32), (y, np.arange(len(y)))),
                shape=(n_topics, len(y)),
            )
            weights = l2_normalize(member @ features).astype(np.float32) * 2.0
            bias[:] = -1.0
            method = "centroid"
        weights.eliminate_zeros()
        logger.info(
            "learned scorer built: %s, %s topics, %s features, %s weights",
            method, n_topics, features.shape[1], weights.nnz,
        )
        return cls(
            Vocabulary.of(word, 0), Vocabulary.of(char, len(word.vocabulary_)),
            weights, bias, method,
        )

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return the question's features (columns, values), as the training saw them.

        Written by hand rather than through scikit-learn's ``transform``, whose input
        checks cost more than the work itself (1.3 ms against about 0.1 ms per question);
        ``tests/test_learned.py`` checks both give the same vector.
        """
        tokens = _TOKEN.findall(text.lower())
        word = self._word.weigh([*tokens, *(f"{a} {b}" for a, b in itertools.pairwise(tokens))])
        char = self._char.weigh(_char_wb_grams(text.lower(), CHAR_NGRAMS))
        columns = np.fromiter((c for c, _ in word + char), dtype=np.int64)
        values = np.fromiter((v for _, v in word + char), dtype=np.float32)
        return columns, values

    def score_all(self, text: str) -> np.ndarray | None:
        """Return every topic's decision value, or None when the base is too large for that."""
        matrix = self._columns
        if matrix is None:
            return None
        columns, values = self.vector(text)
        out = self._bias.copy()
        if len(columns):
            starts, ends = matrix.indptr[columns], matrix.indptr[columns + 1]
            rows = np.concatenate([matrix.indices[a:b] for a, b in zip(starts, ends, strict=True)])
            contributions = np.concatenate(
                [matrix.data[a:b] * v for a, b, v in zip(starts, ends, values, strict=True)]
            )
            out += np.bincount(rows, contributions, minlength=self.n_topics).astype(np.float32)
        return out

    def score(self, text: str, topics: Sequence[int]) -> np.ndarray:
        """Return the decision values of the given topics only."""
        if not topics:
            return np.zeros(0, dtype=np.float32)
        columns, values = self.vector(text)
        rows = self._weights[list(topics)]
        dense = np.zeros(rows.shape[1], dtype=np.float32)
        dense[columns] = values
        scored: np.ndarray = np.asarray(rows @ dense, dtype=np.float32).ravel()
        out: np.ndarray = scored + self._bias[list(topics)]
        return out

    @property
    def memory_bytes(self) -> int:
        """Approximate memory held by the weights (the vocabularies come on top)."""
        w = self._weights
        copies = 1 if self._columns is None else 2
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes) * copies
